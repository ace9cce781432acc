// helm-render renders a Helm chart the way `helm template` does, for machines where
// no helm binary can be installed: Go's text/template with the sprig functions (both
// from Debian), plus the functions Helm adds (include, tpl, required, toYaml, fromYaml,
// toJson, lookup) and the objects it provides (.Values, .Release, .Chart, .Files,
// .Capabilities, .Template). It implements what helm/shrink uses; not dependencies,
// hooks or schema files.
//
// Usage: helm-render [-f values.yaml]... [--set key=value]... [--name RELEASE]
//
//	[--namespace NS] [--json FILE] [--notes FILE] CHART_DIR
//
// Prints the rendered manifests as YAML documents ("# Source:" comments as helm does);
// --json also writes them as a JSON array; --notes writes the rendered NOTES.txt.
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
	"gopkg.in/yaml.v3"
)

// documentSeparator splits a rendered file into YAML documents, as Helm does.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Files is .Files: every chart file outside templates/, by slash path.
type Files map[string][]byte

// Get returns a file's contents ("" when absent), as Helm's .Files.Get.
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Glob returns the files matching a shell pattern, as Helm's .Files.Glob.
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

// AsConfig renders the files as ConfigMap data: base name -> contents (YAML).
func (f Files) AsConfig() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

// AsSecrets renders the files as Secret data: base name -> base64 contents.
func (f Files) AsSecrets() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = b64(data)
	}
	return toYAML(m)
}

// Lines splits a file into lines.
func (f Files) Lines(name string) []string {
	return strings.Split(strings.TrimRight(string(f[name]), "\n"), "\n")
}

func b64(data []byte) string {
	return sprig.TxtFuncMap()["b64enc"].(func(string) string)(string(data))
}

// toYAML is Helm's toYaml: YAML with 2-space indents, no trailing newline; "" on error.
func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n")
}

// normalize turns yaml.v3's decoded maps into map[string]interface{} all the way down.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []interface{}:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	}
	return v
}

// mergeValues overlays src onto dst (maps merge key by key; anything else replaces).
func mergeValues(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// setValue applies one --set a.b.c=value (value parsed as a YAML scalar).
func setValue(values map[string]interface{}, assignment string) error {
	eq := strings.Index(assignment, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %q: want key=value", assignment)
	}
	var parsed interface{}
	if err := yaml.Unmarshal([]byte(assignment[eq+1:]), &parsed); err != nil {
		return fmt.Errorf("--set %q: %v", assignment, err)
	}
	keys := strings.Split(assignment[:eq], ".")
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = normalize(parsed)
	return nil
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return normalize(m).(map[string]interface{}), nil
}

// capitalized turns Chart.yaml keys into Helm's .Chart fields (name -> Name, appVersion -> AppVersion).
func capitalized(m map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range m {
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

func run() error {
	var valueFiles, sets multiFlag
	flag.Var(&valueFiles, "f", "values file overlaid on the chart's values.yaml (repeatable)")
	flag.Var(&sets, "set", "key=value overlaid last (repeatable)")
	name := flag.String("name", "release", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	jsonOut := flag.String("json", "", "also write the objects as a JSON array to this file")
	notesOut := flag.String("notes", "", "write the rendered NOTES.txt to this file")
	kubeVersion := flag.String("kube-version", "v1.29.0", "Kubernetes version in .Capabilities")
	flag.Parse()
	if flag.NArg() != 1 {
		return errors.New("usage: helm-render [flags] CHART_DIR")
	}
	chartDir := flag.Arg(0)

	chartMeta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		overlay, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		mergeValues(values, overlay)
	}
	for _, s := range sets {
		if err := setValue(values, s); err != nil {
			return err
		}
	}
	chartName := fmt.Sprint(chartMeta["name"])

	files := Files{}
	var templates []string
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "templates/") {
			templates = append(templates, rel)
			return nil
		}
		data, err := os.ReadFile(p)
		files[rel] = data
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(templates)

	root := template.New("chart")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env") // Helm removes these: rendering must not depend on the machine
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return normalize(m).(map[string]interface{})
	}
	funcs["toJson"] = func(v interface{}) string { b, _ := json.Marshal(v); return string(b) }
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["lookup"] = func(...interface{}) map[string]interface{} { return map[string]interface{}{} }
	funcs["include"] = func(string, interface{}) (string, error) { return "", errors.New("not bound") }
	funcs["tpl"] = func(string, interface{}) (string, error) { return "", errors.New("not bound") }
	root.Funcs(funcs).Option("missingkey=zero")
	for _, t := range templates {
		data, err := os.ReadFile(filepath.Join(chartDir, t))
		if err != nil {
			return err
		}
		if _, err := root.New(path.Join(chartName, t)).Parse(string(data)); err != nil {
			return err
		}
	}
	// include and tpl need the template set itself.
	root.Funcs(template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"tpl": func(text string, data interface{}) (string, error) {
			t, err := root.Clone()
			if err != nil {
				return "", err
			}
			t, err = t.New("tpl").Parse(text)
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			err = t.Execute(&buf, data)
			return buf.String(), err
		},
	})

	top := map[string]interface{}{
		"Values": values,
		"Chart":  capitalized(chartMeta),
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Files": files,
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": *kubeVersion, "GitVersion": *kubeVersion},
			"APIVersions": []string{"v1", "apps/v1", "keda.sh/v1alpha1", "monitoring.coreos.com/v1"},
		},
	}

	var out bytes.Buffer
	var objects []interface{}
	for _, t := range templates {
		base := path.Base(t)
		if strings.HasPrefix(base, "_") || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || base == "NOTES.txt") {
			continue
		}
		name := path.Join(chartName, t)
		top["Template"] = map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			return err
		}
		rendered := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			if *notesOut != "" {
				if err := os.WriteFile(*notesOut, []byte(rendered), 0o644); err != nil {
					return err
				}
			}
			continue
		}
		for _, doc := range documentSeparator.Split(rendered, -1) {
			var obj interface{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return fmt.Errorf("%s renders invalid YAML: %v\n%s", name, err, doc)
			}
			if obj == nil {
				continue // only comments or whitespace
			}
			objects = append(objects, normalize(obj))
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.Trim(doc, "\n"))
		}
	}
	if _, err := os.Stdout.Write(out.Bytes()); err != nil {
		return err
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(objects, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, data, 0o644)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
}
