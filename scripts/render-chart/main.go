// render-chart renders a Helm chart the way `helm template` does, for machines
// without helm: Go's text/template with the sprig functions (the engine helm
// itself uses), helm's own functions (include, tpl, required, fail, toYaml,
// fromYaml, toJson, fromJson, lookup), values files merged over values.yaml,
// and the values checked against values.schema.json.
//
// Usage:
//
//	render-chart [-f values.yaml]... [--name RELEASE] [--namespace NS]
//	             [--api-versions group/version]... [--notes] CHART_DIR
//
// Rendered documents go to stdout, each preceded by "---" and a "# Source:"
// line; errors go to stderr with a non-zero exit status, e.g.
// "execution error at (crmsync/templates/keda.yaml:3:4): message".
//
// Build (Debian packages golang-go, golang-github-masterminds-sprig-dev,
// golang-gopkg-yaml.v3-dev, golang-github-xeipuuv-gojsonschema-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render-chart main.go
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Capabilities mirrors the part of helm's .Capabilities templates use.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (k KubeVersion) String() string { return k.Version }

// GitVersion is the deprecated spelling of Version that charts still use.
func (k KubeVersion) GitVersion() string { return k.Version }

type VersionSet []string

// Has reports whether "group/version" or "group/version/Kind" is known.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// Files gives templates access to the chart's non-template files.
type Files map[string][]byte

func (f Files) Get(name string) string { return string(f[name]) }
func (f Files) GetBytes(name string) []byte {
	return f[name]
}

// Glob returns the files matching a shell pattern, like helm's Files.Glob.
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func main() {
	var valueFiles, apiVersions listFlag
	release := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	notes := flag.Bool("notes", false, "also print NOTES.txt")
	flag.Var(&valueFiles, "f", "values file merged over the chart's values.yaml (repeatable)")
	flag.Var(&apiVersions, "api-versions", "extra API version for .Capabilities.APIVersions (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: render-chart [-f values.yaml]... [--name R] [--namespace NS] CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *release, *namespace, valueFiles, apiVersions, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

// readYAML reads a YAML document into JSON-shaped values, as helm does
// (sigs.k8s.io/yaml goes through JSON, so every number is a float64).
func readYAML(data []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("top level is not a map")
	}
	return m, nil
}

// merge lays src over dst: maps merge key by key, anything else replaces, and
// a null deletes the key (helm's rule for removing a default).
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := v.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = merge(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// dropNulls removes null entries left in the defaults themselves.
func dropNulls(m map[string]interface{}) {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		} else if sub, ok := v.(map[string]interface{}); ok {
			dropNulls(sub)
		}
	}
}

func validateSchema(chartName string, schema []byte, values map[string]interface{}) error {
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %v", err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n", chartName)
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

func toYAML(v interface{}) string {
	// Through JSON first, like helm, so maps come out with sorted keys.
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var generic interface{}
	if err := yaml.Unmarshal(j, &generic); err != nil {
		return ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return ""
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m, err := readYAML([]byte(s))
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	return m
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func loadChart(dir string) (chart map[string]interface{}, files Files, templates map[string]string, err error) {
	meta, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := readYAML(meta)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	// .Chart exposes Chart.yaml's fields capitalised (.Chart.Name, .Chart.AppVersion).
	chart = map[string]interface{}{}
	for k, v := range raw {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	if _, ok := chart["Name"].(string); !ok {
		return nil, nil, nil, fmt.Errorf("Chart.yaml: name is missing")
	}
	files = Files{}
	templates = map[string]string{}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, werr error) error {
		if werr != nil || info.IsDir() {
			return werr
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		data, rerr := os.ReadFile(p)
		if rerr != nil {
			return rerr
		}
		if strings.HasPrefix(rel, "templates/") {
			templates[rel] = string(data)
		} else {
			files[rel] = data
		}
		return nil
	})
	return chart, files, templates, err
}

var noValue = regexp.MustCompile(`<no value>`)

func render(dir, release, namespace string, valueFiles, apiVersions []string, withNotes bool) (string, error) {
	chart, files, sources, err := loadChart(dir)
	if err != nil {
		return "", err
	}
	chartName := chart["Name"].(string)

	values, err := readYAML(files["values.yaml"])
	if err != nil {
		return "", fmt.Errorf("values.yaml: %v", err)
	}
	for _, f := range valueFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		over, err := readYAML(data)
		if err != nil {
			return "", fmt.Errorf("%s: %v", f, err)
		}
		values = merge(values, over)
	}
	dropNulls(values)
	if schema, ok := files["values.schema.json"]; ok {
		if err := validateSchema(chartName, schema, values); err != nil {
			return "", err
		}
	}

	versions := VersionSet{"v1", "apps/v1", "policy/v1", "autoscaling/v2", "batch/v1",
		"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1"}
	versions = append(versions, apiVersions...)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": Capabilities{
			KubeVersion: KubeVersion{Version: "v1.29.0", Major: "1", Minor: "29"},
			APIVersions: versions,
			HelmVersion: map[string]string{"Version": "v3"},
		},
		"Files": files,
	}

	// One template set holds every file under its helm name
	// (<chart>/templates/<file>), so named templates are shared.
	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return noValue.ReplaceAllString(buf.String(), ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	root.Funcs(funcs).Option("missingkey=zero")

	names := make([]string, 0, len(sources))
	for rel := range sources {
		names = append(names, rel)
	}
	sort.Strings(names)
	for _, rel := range names {
		full := chartName + "/" + rel
		if _, err := root.New(full).Parse(sources[rel]); err != nil {
			return "", err
		}
	}

	var out strings.Builder
	for _, rel := range names {
		base := path.Base(rel)
		if strings.HasPrefix(base, "_") {
			continue
		}
		isNotes := base == "NOTES.txt"
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") &&
			!strings.HasSuffix(base, ".tpl") {
			continue
		}
		full := chartName + "/" + rel
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": full, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, data); err != nil {
			return "", cleanExecError(err)
		}
		text := noValue.ReplaceAllString(buf.String(), "")
		if isNotes && !withNotes {
			continue
		}
		for _, doc := range splitDocs(text) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimRight(doc, "\n"))
		}
	}
	return out.String(), nil
}

// splitDocs splits one template's output at "---" separator lines.
func splitDocs(text string) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// cleanExecError words a template error like helm: the message given to
// fail or required, after the location.
func cleanExecError(err error) error {
	msg := err.Error()
	re := regexp.MustCompile(`^template: ([^:]+:\d+:\d+): executing "[^"]*" at <[^>]*>: error calling (?:fail|required|include): `)
	for {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			break
		}
		loc := m[1]
		msg = msg[len(m[0]):]
		if !re.MatchString(msg) {
			return fmt.Errorf("execution error at (%s): %s", loc, msg)
		}
	}
	return err
}
