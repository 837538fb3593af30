package spec

import (
	"encoding/json"
	"testing"
)

func TestDefinitionIsAMQP091(t *testing.T) {
	var d struct {
		Major    int `json:"major-version"`
		Minor    int `json:"minor-version"`
		Revision int `json:"revision"`
		Classes  []struct {
			Name string `json:"name"`
		} `json:"classes"`
	}
	if err := json.Unmarshal(JSON(), &d); err != nil {
		t.Fatalf("definition does not parse: %v", err)
	}
	if d.Major != 0 || d.Minor != 9 || d.Revision != 1 {
		t.Fatalf("version %d-%d-%d, want 0-9-1", d.Major, d.Minor, d.Revision)
	}
	if len(d.Classes) == 0 {
		t.Fatal("no classes")
	}
}
