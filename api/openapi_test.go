package api_test

import (
	"bufio"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// openAPIRoutes reads "METHOD /path" for every operation under paths: in
// docs/openapi.yaml. The document keeps paths at two spaces of indent and
// methods at four, which is all this reader needs (the module has no YAML
// dependency).
func openAPIRoutes(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathRE := regexp.MustCompile(`^  (/[^\s:]*):\s*$`)
	methodRE := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options|trace):`)
	var out []string
	in, cur := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			in = strings.HasPrefix(line, "paths:")
			continue
		}
		if !in {
			continue
		}
		if m := pathRE.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := methodRE.FindStringSubmatch(line); m != nil && cur != "" {
			out = append(out, strings.ToUpper(m[1])+" "+cur)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t)
	doc := openAPIRoutes(t, "../docs/openapi.yaml")
	if len(doc) == 0 {
		t.Fatal("no operations found in docs/openapi.yaml")
	}
	router := e.srv.Routes()
	sort.Strings(doc)
	sort.Strings(router)
	inDoc := map[string]bool{}
	for _, r := range doc {
		if inDoc[r] {
			t.Errorf("docs/openapi.yaml lists %s twice", r)
		}
		inDoc[r] = true
	}
	inRouter := map[string]bool{}
	for _, r := range router {
		inRouter[r] = true
		if !inDoc[r] {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, r := range doc {
		if !inRouter[r] {
			t.Errorf("docs/openapi.yaml describes %s, which the router does not serve", r)
		}
	}
}
