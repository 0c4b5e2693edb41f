package queries

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	targetLabel = regexp.MustCompile(`target_label\s*=\s*"([a-zA-Z_][a-zA-Z0-9_]*)"`)
	valuesKey   = regexp.MustCompile(`(?m)^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=`)
)

// SchemaFromAlloy reads the stream labels and structured-metadata fields an
// Alloy configuration gives Loki: the target_label of its relabel rules and
// the keys of its stage.labels and stage.structured_metadata blocks.
func SchemaFromAlloy(path string) (LogSchema, error) {
	b, err := readBounded(path)
	if err != nil {
		return LogSchema{}, err
	}
	src := string(b)
	var s LogSchema
	for _, m := range targetLabel.FindAllStringSubmatch(src, -1) {
		s.Labels = append(s.Labels, m[1])
	}
	lbls, err := blockKeys(src, "stage.labels")
	if err != nil {
		return s, err
	}
	meta, err := blockKeys(src, "stage.structured_metadata")
	if err != nil {
		return s, err
	}
	s.Labels = append(s.Labels, lbls...)
	s.Metadata = meta
	sort.Strings(s.Labels)
	sort.Strings(s.Metadata)
	if len(s.Labels) == 0 {
		return s, fmt.Errorf("%s: no stream labels", path)
	}
	return s, nil
}

// blockKeys returns the keys of the values map inside the first block
// named name.
func blockKeys(src, name string) ([]string, error) {
	i := strings.Index(src, name+" {")
	if i < 0 {
		return nil, nil
	}
	depth, start := 0, i+len(name)+1
	for j := start; j < len(src); j++ {
		switch src[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				body := src[start:j]
				var keys []string
				for _, m := range valuesKey.FindAllStringSubmatch(body, -1) {
					if m[1] != "values" {
						keys = append(keys, m[1])
					}
				}
				return keys, nil
			}
		}
	}
	return nil, fmt.Errorf("block %s is not closed", name)
}
