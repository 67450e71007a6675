package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// unsetAll clears every variable Config names for this test (restored at
// cleanup).
func unsetAll(t *testing.T) {
	t.Helper()
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Config{})) {
		k := key(f)
		t.Setenv(k, os.Getenv(k)) // restores it at cleanup
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// decodeAll converts as envconfig.Process does, read from the real
// environment: same values, same errors.
func TestDecodeAgreesWithEnvconfig(t *testing.T) {
	cases := []map[string]string{
		nil, // every default
		{
			"JOBALERT_SMTP_PORT":             "0x24b", // base prefixes, as strconv.ParseInt(s, 0, ...)
			"JOBALERT_STREAM_REPLICAS":       "+3",
			"JOBALERT_TRUST_PROXY":           "T",
			"JOBALERT_WEBHOOK_ALLOW_PRIVATE": "1",
			"JOBALERT_INSTANT_WINDOW":        "1h2m3.5s",
			"JOBALERT_SMTP_TIMEOUT":          "-5s",
			"JOBALERT_ALLOWED_ORIGINS":       "https://a.example, https://b.example,",
			"JOBALERT_MAIL_FROM":             "  spaces kept  ",
			"JOBALERT_LOG_LEVEL":             "DEBUG",
		},
		{"JOBALERT_ALLOWED_ORIGINS": "   "},
		{"JOBALERT_SMTP_PORT": "twenty-five"},
		{"JOBALERT_INSTANT_WINDOW": "soon"},
		{"JOBALERT_TRUST_PROXY": "yes"},
		{"JOBALERT_CONSUMER_BATCH": "99999999999999999999"},
	}
	for i, vars := range cases {
		unsetAll(t)
		for k, v := range vars {
			t.Setenv(k, v)
		}
		var want Config
		wantErr := envconfig.Process(Prefix, &want)
		var got Config
		problems := decodeAll(&got, os.Getenv)

		if wantErr == nil {
			if len(problems) > 0 {
				t.Errorf("case %d %v: got problems %q, envconfig none", i, vars, problems)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("case %d %v:\ngot  %+v\nwant %+v (envconfig)", i, vars, got, want)
			}
			continue
		}
		// Each error case has one bad variable: the same line as
		// envconfig's error describes.
		pe, ok := wantErr.(*envconfig.ParseError)
		if !ok {
			t.Fatalf("case %d: envconfig: %v", i, wantErr)
		}
		f, _ := reflect.TypeOf(Config{}).FieldByName(pe.FieldName)
		if len(problems) != 1 || problems[0] != describe(f, pe) {
			t.Errorf("case %d %v: got %q, want [%q] as envconfig's %v", i, vars, problems, describe(f, pe), wantErr)
		}
	}
}

// Load never writes the process environment.
func TestLoadLeavesTheEnvironmentAlone(t *testing.T) {
	unsetAll(t)
	t.Setenv("JOBALERT_SMTP_HOST", "from-the-environment")
	before := os.Environ()
	cfg, err := Load(func(k string) string {
		if k == "JOBALERT_SMTP_PORT" {
			return "2525"
		}
		return ""
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTPPort != 2525 || cfg.SMTPHost != "localhost" {
		t.Errorf("got port %d host %q, want 2525 from getenv and the default host (getenv, not the environment)", cfg.SMTPPort, cfg.SMTPHost)
	}
	if after := os.Environ(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the environment changed during Load")
	}
	if v, ok := os.LookupEnv("JOBALERT_SMTP_PORT"); ok {
		t.Errorf("JOBALERT_SMTP_PORT=%q in the environment after Load", v)
	}
}
