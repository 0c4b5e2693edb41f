// Package helmchart renders the VRSky Helm chart (deploy/helm/vrsky) with
// Helm's own Go SDK, exactly as `helm template` would, decodes every object
// strictly into its Kubernetes API type (or, for the custom resources, into
// a local struct that refuses unknown fields) and checks what a cluster
// would otherwise only show at run time: probes, resources, selectors,
// NetworkPolicy coverage, secrets kept out of ConfigMaps, hook order.
//
// It never talks to a cluster and never installs anything: no cluster runs
// where VRSky is developed, so a rendered and checked chart is all it can
// vouch for.
package helmchart

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// Object is one rendered Kubernetes object.
type Object struct {
	// Source is the chart template that produced it.
	Source string
	// Kind, APIVersion and Name identify it.
	Kind, APIVersion, Name string
	// Hook is true for hook objects, with the events they run on.
	Hook   bool
	Events []string
	// Doc is the YAML document as rendered.
	Doc []byte
	// Value is the strictly decoded object: a pointer to a k8s.io/api type
	// or to one of this package's custom-resource structs.
	Value any
}

// Release is a rendered chart: its objects, hooks included.
type Release struct {
	Objects []Object
	Notes   string
}

// Kinds counts the objects per kind.
func (r *Release) Kinds() map[string]int {
	n := map[string]int{}
	for _, o := range r.Objects {
		n[o.Kind]++
	}
	return n
}

// OfKind returns the objects of one kind, in order.
func (r *Release) OfKind(kind string) []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// Find returns the object of this kind and name.
func (r *Release) Find(kind, name string) (Object, bool) {
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

// LoadChart loads the chart directory.
func LoadChart(dir string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return ch, nil
}

// ReadValues reads and merges values files, later files winning, as
// `helm -f a.yaml -f b.yaml` does.
func ReadValues(paths ...string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
		v, err := loader.LoadValues(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("values %s: %w", p, err)
		}
		out = loader.MergeMaps(out, v)
	}
	return out, nil
}

// ReadValuesString reads one values document.
func ReadValuesString(doc string) (map[string]any, error) {
	v, err := loader.LoadValues(strings.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return v, nil
}

// MergeValues merges over onto base, over winning, without changing either.
func MergeValues(base, over map[string]any) map[string]any {
	return loader.MergeMaps(loader.MergeMaps(map[string]any{}, base), over)
}

// Render renders the chart with vals as `helm template --namespace ns`
// does (a client-only dry run of an install, schema validation included)
// and decodes every object strictly.
func Render(ch *chart.Chart, vals map[string]any, releaseName, namespace string) (*Release, error) {
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = &common.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	if vals == nil {
		vals = map[string]any{}
	}
	ri, err := install.Run(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	rel, ok := ri.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("render: unexpected release type %T", ri)
	}
	out := &Release{Notes: rel.Info.Notes}
	for _, d := range splitManifest(rel.Manifest) {
		o, err := Decode([]byte(d.doc))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.source, err)
		}
		o.Source = d.source
		out.Objects = append(out.Objects, o)
	}
	for _, h := range rel.Hooks {
		o, err := Decode([]byte(h.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Path, err)
		}
		o.Source, o.Hook = h.Path, true
		for _, e := range h.Events {
			o.Events = append(o.Events, string(e))
		}
		out.Objects = append(out.Objects, o)
	}
	return out, nil
}

type manifestDoc struct{ source, doc string }

var (
	docSep    = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceTag = regexp.MustCompile(`(?m)^# Source: (.+)$`)
)

// splitManifest cuts a release manifest into its documents, dropping empty
// ones, each with the template it came from.
func splitManifest(m string) []manifestDoc {
	var out []manifestDoc
	for _, d := range docSep.Split(m, -1) {
		body := strings.TrimSpace(sourceTag.ReplaceAllString(d, ""))
		if body == "" {
			continue
		}
		src := ""
		if s := sourceTag.FindStringSubmatch(d); s != nil {
			src = s[1]
		}
		out = append(out, manifestDoc{source: src, doc: d})
	}
	return out
}

// Lint runs Helm's lint action (what `helm lint --strict` runs) on the
// chart directory with vals and returns its findings at warning level or
// above.
func Lint(dir string, vals map[string]any) []error {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = "vrsky"
	res := l.Run([]string{dir}, vals)
	return res.Errors
}

// FileOverlay returns a copy of ch whose extra files are replaced by files
// (name → content; a nil content removes the file): how a test renders the
// chart with or without files/alerts.yaml and dashboards.
func FileOverlay(ch *chart.Chart, files map[string][]byte) *chart.Chart {
	c := *ch
	c.Files = nil
	for _, f := range ch.Files {
		if _, replaced := files[f.Name]; !replaced {
			c.Files = append(c.Files, f)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if files[name] != nil {
			c.Files = append(c.Files, &common.File{Name: name, Data: files[name]})
		}
	}
	return &c
}

// WithoutFiles returns a copy of ch without any extra file under prefix.
func WithoutFiles(ch *chart.Chart, prefix string) *chart.Chart {
	c := *ch
	c.Files = nil
	for _, f := range ch.Files {
		if !strings.HasPrefix(filepath.ToSlash(f.Name), prefix) {
			c.Files = append(c.Files, f)
		}
	}
	return &c
}

// ErrNoObjects is returned by Check for an empty release.
var ErrNoObjects = errors.New("the release has no objects")
