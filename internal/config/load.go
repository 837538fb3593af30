package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// ConfigFlag names the flag, and ConfigEnv the environment variable, that
// give the path of a YAML configuration file. The flag wins.
const (
	ConfigFlag = "config"
	ConfigEnv  = EnvPrefix + "CONFIG"
)

// Flags ties the settings to a command line. Create it with AddFlags before
// the flag set is parsed, and call Load after.
type Flags struct {
	fs *pflag.FlagSet
	// values receives what the command line sets; Load copies only the
	// flags that were actually given.
	values Config
	file   string
}

// AddFlags registers a flag for every setting, and --config, on fs.
func AddFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: Default()}
	for _, s := range Settings() {
		v := s.field(&f.values)
		fs.Var(v, s.Flag, fmt.Sprintf("%s [$%s]", s.Help, s.Env))
		if v.Type() == "bool" {
			fs.Lookup(s.Flag).NoOptDefVal = "true" // --flag alone means true
		}
	}
	fs.StringVar(&f.file, ConfigFlag, "", fmt.Sprintf("YAML configuration `file` [$%s]", ConfigEnv))
	return f
}

// Load builds the configuration from, highest precedence first, the flags
// given on the command line, the environment seen through lookupEnv (such as
// os.LookupEnv), the YAML file named by --config or WHARF_CONFIG, and
// Default(). It returns the first error, including Validate's.
func (f *Flags) Load(lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := Default()

	path := f.file
	if !f.fs.Changed(ConfigFlag) {
		path, _ = lookupEnv(ConfigEnv)
	}
	if path != "" {
		if err := LoadFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := ApplyEnv(&cfg, lookupEnv); err != nil {
		return Config{}, err
	}
	for _, s := range Settings() {
		fl := f.fs.Lookup(s.Flag)
		if fl == nil || !fl.Changed {
			continue
		}
		if err := s.field(&cfg).Set(fl.Value.String()); err != nil {
			return Config{}, fmt.Errorf("flag --%s: %w", s.Flag, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadFile reads the YAML file at path over cfg: keys in the file replace
// cfg's values and keys not in it leave them alone.
func LoadFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := DecodeYAML(b, cfg); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// DecodeYAML decodes one YAML document over cfg. Unknown keys are an error.
// An empty document changes nothing.
func DecodeYAML(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	next := *cfg
	if err := dec.Decode(&next); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		if strings.Contains(err.Error(), "time.Duration") {
			return fmt.Errorf("%w\n(durations need a unit: 0s, 500ms, 10s, 5m, 168h)", err)
		}
		return err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return errors.New("more than one YAML document")
	case !errors.Is(err, io.EOF):
		return err
	}
	*cfg = next
	return nil
}

// ApplyEnv sets every setting whose environment variable lookupEnv reports
// as set, even to the empty string (which disables a listener).
func ApplyEnv(cfg *Config, lookupEnv func(string) (string, bool)) error {
	for _, s := range Settings() {
		v, ok := lookupEnv(s.Env)
		if !ok {
			continue
		}
		if err := s.field(cfg).Set(v); err != nil {
			return fmt.Errorf("environment variable %s=%q: %w", s.Env, v, err)
		}
	}
	return nil
}
