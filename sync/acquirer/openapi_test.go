package acquirer

import (
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPI checks that sync/openapi.yaml is valid YAML in the OpenAPI 3 shape and that
// it documents exactly the signed routes the server serves.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var served []string
	for _, r := range (&Server{}).routes() {
		served = append(served, r.pattern)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if got, want := strings.Join(documented, "\n"), strings.Join(served, "\n"); got != want {
		t.Fatalf("documented routes:\n%s\nserved routes:\n%s", got, want)
	}
}
