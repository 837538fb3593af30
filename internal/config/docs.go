package config

import "strings"

// MarkdownTable renders Settings as the Markdown table README.md shows. A
// test fails when the README's copy differs, so the documentation cannot
// drift from the code.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Setting | Flag | Environment variable | YAML key | Default | Meaning |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, s := range Settings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		b.WriteString("| " + s.Name +
			" | `--" + s.Flag + "`" +
			" | `" + s.Env + "`" +
			" | `" + s.YAMLKey + "`" +
			" | " + def +
			" | " + s.Help + " |\n")
	}
	return b.String()
}
