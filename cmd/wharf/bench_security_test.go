package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKafkaSecurityTargets(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := kafkaSecurity{mechanism: "SCRAM-SHA-256", user: "u", password: "p"}
	for target, want := range map[string]struct {
		addr string
		opts int
	}{
		"127.0.0.1:9092":                  {"127.0.0.1:9092", 0},
		"plaintext://127.0.0.1:9092":      {"127.0.0.1:9092", 0},
		"ssl://127.0.0.1:9093":            {"127.0.0.1:9093", 1},
		"sasl_plaintext://127.0.0.1:9092": {"127.0.0.1:9092", 1},
		"sasl_ssl://127.0.0.1:9093":       {"127.0.0.1:9093", 2},
	} {
		addr, opts, err := k.target(target)
		if err != nil || addr != want.addr || len(opts) != want.opts {
			t.Errorf("%s: %q, %d options, %v", target, addr, len(opts), err)
		}
	}
	for _, bad := range []kafkaSecurity{{caFile: ca}, {mechanism: "GSSAPI"}} {
		target := "ssl://h:1"
		if bad.mechanism != "" {
			target = "sasl_plaintext://h:1"
		}
		if _, _, err := bad.target(target); err == nil {
			t.Errorf("%+v accepted for %s", bad, target)
		}
	}
	if _, _, err := k.target("kerberos://h:1"); err == nil {
		t.Error("an unknown protocol accepted")
	}
}
