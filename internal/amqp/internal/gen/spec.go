package gen

import (
	"encoding/json"
	"fmt"
	"strings"
)

// definition is the part of the machine-readable AMQP definition the
// generator reads.
type definition struct {
	Name      string       `json:"name"`
	Major     int          `json:"major-version"`
	Minor     int          `json:"minor-version"`
	Revision  int          `json:"revision"`
	Port      int          `json:"port"`
	Domains   [][]string   `json:"domains"`
	Constants []constant   `json:"constants"`
	Classes   []classEntry `json:"classes"`
}

type constant struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
	Class string `json:"class"`
}

type classEntry struct {
	ID         int           `json:"id"`
	Name       string        `json:"name"`
	Properties []fieldEntry  `json:"properties"`
	Methods    []methodEntry `json:"methods"`
}

type methodEntry struct {
	ID          int          `json:"id"`
	Name        string       `json:"name"`
	Synchronous bool         `json:"synchronous"`
	Content     bool         `json:"content"`
	Arguments   []fieldEntry `json:"arguments"`
}

type fieldEntry struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Domain string `json:"domain"`
}

// baseTypes are the AMQP field types the wire package can read and write.
var baseTypes = map[string]bool{
	"bit": true, "octet": true, "short": true, "long": true, "longlong": true,
	"shortstr": true, "longstr": true, "table": true, "timestamp": true,
}

// parse reads the definition and checks what the generator relies on: known
// base types for every field, unique ids, ids that fit the wire.
func parse(src []byte) (*definition, error) {
	var d definition
	if err := json.Unmarshal(src, &d); err != nil {
		return nil, fmt.Errorf("parse definition: %w", err)
	}
	domains := make(map[string]string, len(d.Domains))
	for _, p := range d.Domains {
		if len(p) != 2 {
			return nil, fmt.Errorf("domain entry %q: want [name, type]", p)
		}
		domains[p[0]] = p[1]
	}
	classIDs := map[int]bool{}
	for ci := range d.Classes {
		c := &d.Classes[ci]
		if c.ID <= 0 || c.ID > 0xFFFF || classIDs[c.ID] {
			return nil, fmt.Errorf("class %s: bad or repeated id %d", c.Name, c.ID)
		}
		classIDs[c.ID] = true
		for fi := range c.Properties {
			if err := resolve(&c.Properties[fi], domains); err != nil {
				return nil, fmt.Errorf("class %s property: %w", c.Name, err)
			}
			if c.Properties[fi].Type == "bit" {
				return nil, fmt.Errorf("class %s property %s: bit properties are not supported", c.Name, c.Properties[fi].Name)
			}
		}
		if len(c.Properties) > 15 {
			return nil, fmt.Errorf("class %s: %d properties need more than one flag word", c.Name, len(c.Properties))
		}
		methodIDs := map[int]bool{}
		for mi := range c.Methods {
			m := &c.Methods[mi]
			if m.ID <= 0 || m.ID > 0xFFFF || methodIDs[m.ID] {
				return nil, fmt.Errorf("method %s.%s: bad or repeated id %d", c.Name, m.Name, m.ID)
			}
			methodIDs[m.ID] = true
			for fi := range m.Arguments {
				if err := resolve(&m.Arguments[fi], domains); err != nil {
					return nil, fmt.Errorf("method %s.%s: %w", c.Name, m.Name, err)
				}
			}
		}
	}
	return &d, nil
}

// resolve sets f.Type to the base type of f's type or domain.
func resolve(f *fieldEntry, domains map[string]string) error {
	t := f.Type
	if t == "" {
		t = f.Domain
	}
	for range 8 {
		if baseTypes[t] {
			f.Type = t
			return nil
		}
		next, ok := domains[t]
		if !ok || next == t {
			break
		}
		t = next
	}
	return fmt.Errorf("field %s: type %q (domain %q) is not a known base type", f.Name, f.Type, f.Domain)
}

// initialisms are words written in capitals in Go names.
var initialisms = map[string]string{"id": "ID"}

// wholeNames are names whose Go form is not the plain join of their words.
var wholeNames = map[string]string{"nowait": "NoWait"}

// goName turns a specification name ("routing-key", "start-ok") into a Go
// identifier ("RoutingKey", "StartOk").
func goName(s string) string {
	if n, ok := wholeNames[s]; ok {
		return n
	}
	var b strings.Builder
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
		if n, ok := initialisms[w]; ok {
			b.WriteString(n)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// reservedFields are Go names a method struct cannot use for a field,
// because the Method interface has methods of those names, with the name
// used instead.
var reservedFields = map[string]string{
	"ClassID":     "FailingClassID",
	"MethodID":    "FailingMethodID",
	"Name":        "",
	"HasContent":  "",
	"Synchronous": "",
	"AppendTo":    "",
}

// fieldName is the Go name of a method argument.
func fieldName(method string, f fieldEntry) (string, error) {
	n := goName(f.Name)
	if alt, ok := reservedFields[n]; ok {
		if alt == "" {
			return "", fmt.Errorf("method %s: argument %s clashes with a Method method", method, f.Name)
		}
		return alt, nil
	}
	return n, nil
}
