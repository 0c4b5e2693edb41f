package connectors

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// SecretRef is one secret reference in a spec's connector configs, at a
// location such as "producers.db.config.url" or
// "producers.api.config.secretHeaders.Authorization".
type SecretRef struct {
	Location string
	Secret   sdk.Secret
}

// SecretRefs lists every secret reference ({"env": NAME} or
// {"secret": NAME}) in the configs of a spec's consumer, steps and
// producers, in that order. Configs that do not decode, or whose connector
// is unknown, are skipped: ValidateSpec reports them.
func SecretRefs(in spec.Integration) []SecretRef {
	cat := Catalog()
	var refs []SecretRef
	collect := func(loc string, step spec.Step, kinds ...sdk.Kind) {
		conn, ok := cat.Lookup(step.Connector, kinds...)
		if !ok {
			return
		}
		cfg := conn.NewConfig()
		if config.Decode(step.Config, cfg) != nil {
			return
		}
		walkSecrets(loc+".config", reflect.ValueOf(cfg), &refs)
	}
	collect("consumer", in.Consumer, sdk.KindConsumer)
	for i, step := range in.Steps {
		collect(fmt.Sprintf("steps[%d]", i), step, sdk.KindConverter, sdk.KindFilter)
	}
	for _, name := range in.ProducerNames() {
		collect("producers."+name, in.Producers[name], sdk.KindProducer)
	}
	return refs
}

var secretType = reflect.TypeFor[sdk.Secret]()

// walkSecrets finds the sdk.Secret values in v, naming each by the JSON
// path that led to it.
func walkSecrets(loc string, v reflect.Value, refs *[]SecretRef) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkSecrets(loc, v.Elem(), refs)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			if s := v.Interface().(sdk.Secret); !s.IsZero() {
				*refs = append(*refs, SecretRef{Location: loc, Secret: s})
			}
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
				continue
			case name == "" && f.Anonymous:
				walkSecrets(loc, v.Field(i), refs)
				continue
			case name == "":
				name = f.Name
			}
			walkSecrets(loc+"."+name, v.Field(i), refs)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkSecrets(fmt.Sprintf("%s[%d]", loc, i), v.Index(i), refs)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			walkSecrets(loc+"."+k.String(), v.MapIndex(k), refs)
		}
	}
}
