package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProvision_Refusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := strings.Repeat("ab", 32)
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"no bundle", nil, 2, "needs --bundle"},
		{"missing file", []string{"--bundle", filepath.Join(dir, "none.json")}, 1, "read the bundle"},
		{"not json", []string{"--bundle", write("x.json", "hello")}, 1, "not a provisioning bundle"},
		{"unknown field", []string{"--bundle", write("u.json", `{"terminal":"T1","acquirer_url":"http://h:1","secret":"`+secret+`","extra":1}`)}, 1, "not a provisioning bundle"},
		{"short secret", []string{"--bundle", write("s.json", `{"terminal":"T1","acquirer_url":"http://h:1","secret":"abcd"}`)}, 1, "64 hex digits"},
		{"bad terminal", []string{"--bundle", write("t.json", `{"terminal":"a b","acquirer_url":"http://h:1","secret":"`+secret+`"}`)}, 1, "terminal id"},
		{"bad url", []string{"--bundle", write("l.json", `{"terminal":"T1","acquirer_url":"ftp://h","secret":"`+secret+`"}`)}, 1, "acquirer_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"provision", "--config-dir", filepath.Join(dir, "etc"), "--state-dir", filepath.Join(dir, "state")}, tt.args...)
			code, _, stderr := run(t, "", args...)
			if code != tt.code || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d %q, want %d and %q", code, stderr, tt.code, tt.wantStderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "etc", "key")); err == nil {
				t.Fatal("a refused provision wrote the key")
			}
		})
	}
}

func TestProvisionEnv_KeepsOtherLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("POSAGENT_API_TOKEN=tok0123456789abcdef\nPOSAGENT_TERMINAL=OLD\nPOSAGENT_LISTEN=127.0.0.1:7481\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := provisionEnv(path, map[string]string{"POSAGENT_TERMINAL": "T2", "POSAGENT_ACQUIRER": "http://a:1", "POSAGENT_KEY_FILE": "/k", "POSAGENT_STATE_DIR": "/s"})
	if err != nil {
		t.Fatal(err)
	}
	want := "POSAGENT_API_TOKEN=tok0123456789abcdef\nPOSAGENT_LISTEN=127.0.0.1:7481\nPOSAGENT_TERMINAL=T2\nPOSAGENT_ACQUIRER=http://a:1\nPOSAGENT_KEY_FILE=/k\nPOSAGENT_STATE_DIR=/s\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
