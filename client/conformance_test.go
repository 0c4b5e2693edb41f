package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
)

// document is the part of the OpenAPI document this test reads.
type document struct {
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Responses   map[string]struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"responses"`
		RequestBody *struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"requestBody"`
	} `json:"paths"`
}

// TestEveryOperationMatchesTheDocument calls every operation of
// ui/openapi.json through the generated client, against a server that
// answers each status code the document lists for it, and checks that the
// request had the document's method and path and that each answer is
// decoded into its typed field (JSON200, ApplicationproblemJSON404…).
func TestEveryOperationMatchesTheDocument(t *testing.T) {
	raw, err := os.ReadFile("../ui/openapi.json")
	require.NoError(t, err)
	var doc document
	require.NoError(t, json.Unmarshal(raw, &doc))

	var (
		mu     sync.Mutex
		got    string // method and path of the last request
		query  string
		status int
		ctype  string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = r.Method + " " + r.URL.Path
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			_, _ = io.WriteString(w, "{}")
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	api := reflect.ValueOf(c.ClientWithResponses)

	operations := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			name := goName(op.OperationID)
			variants := []string{name + "WithResponse"}
			if op.RequestBody != nil {
				variants = []string{name + "WithBodyWithResponse"}
				if _, ok := op.RequestBody.Content["application/json"]; ok {
					variants = append(variants, name+"WithResponse")
				}
			}
			for _, v := range variants {
				m := api.MethodByName(v)
				require.True(t, m.IsValid(), "the client has no %s for %s", v, op.OperationID)
				codes := slices.Sorted(func(yield func(string) bool) {
					for code := range op.Responses {
						if !yield(code) {
							return
						}
					}
				})
				for _, code := range codes {
					for ct := range op.Responses[code].Content {
						if ct == "text/event-stream" {
							continue // a stream, read by the caller
						}
						st, field := answerField(code, ct)
						mu.Lock()
						status, ctype = st, ct
						mu.Unlock()
						args, queryParams := arguments(m.Type())
						out := m.Call(args)
						require.True(t, out[1].IsNil(), "%s %s: %v", v, code, out[1])
						mu.Lock()
						require.Equal(t, strings.ToUpper(method)+" "+pathOf(path), got, "%s", v)
						for _, q := range queryParams {
							require.Contains(t, query, q+"=", "%s sends its %s parameter", v, q)
						}
						mu.Unlock()
						resp := out[0].Elem()
						answer := out[0].Interface().(interface {
							client.Response
							Status() string
							ContentType() string
						})
						require.Equal(t, st, answer.StatusCode())
						require.Equal(t, ct, answer.ContentType())
						require.Contains(t, answer.Status(), strconv.Itoa(st))
						if st != http.StatusNoContent {
							require.Equal(t, "{}", string(answer.GetBody()))
						}
						if field != "" {
							f := resp.FieldByName(field)
							require.True(t, f.IsValid(), "%s has no field %s", resp.Type(), field)
							require.False(t, f.IsNil(), "%s: %s not decoded", v, field)
							getter := out[0].MethodByName("Get" + field)
							require.True(t, getter.IsValid(), "%s has no Get%s", resp.Type(), field)
							require.Equal(t, f.Interface(), getter.Call(nil)[0].Interface())
						}
					}
				}
				operations++
			}
		}
	}
	require.Greater(t, operations, 40)
}

// goName is the generator's name for an operation ID: list-api-keys is
// ListApiKeys.
func goName(operationID string) string {
	var b strings.Builder
	for _, part := range strings.Split(operationID, "-") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// answerField is the status the fake server answers for a response code of
// the document, and the field of the generated answer type that holds it
// ("" for none).
func answerField(code, contentType string) (int, string) {
	st, err := strconv.Atoi(code)
	if err != nil { // default: any status the operation does not list
		st, code = 599, "Default"
	}
	switch contentType {
	case "application/json":
		return st, "JSON" + code
	case "application/problem+json":
		return st, "ApplicationproblemJSON" + code
	}
	return st, ""
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// pathOf is path with every parameter "x", as arguments gives them.
func pathOf(path string) string { return pathParam.ReplaceAllString(path, "x") }

// arguments are values for a generated method's parameters: a context,
// "x" for path parameters, every optional parameter set, an empty JSON
// body. It also returns the names of the query parameters set.
func arguments(m reflect.Type) ([]reflect.Value, []string) {
	var query []string
	n := m.NumIn()
	if m.IsVariadic() {
		n-- // the request editors
	}
	args := make([]reflect.Value, 0, n)
	for i := range n {
		in := m.In(i)
		switch {
		case in == reflect.TypeFor[context.Context]():
			args = append(args, reflect.ValueOf(context.Background()))
		case in == reflect.TypeFor[io.Reader]():
			args = append(args, reflect.ValueOf(strings.NewReader("{}")))
		case in.Kind() == reflect.String && i+1 < n && m.In(i+1) == reflect.TypeFor[io.Reader]():
			args = append(args, reflect.ValueOf("application/json")) // the body's content type
		case in.Kind() == reflect.String:
			args = append(args, reflect.ValueOf("x"))
		case in.Kind() == reflect.Pointer && in.Elem().Kind() == reflect.Struct: // optional parameters
			p := reflect.New(in.Elem())
			query = append(query, fill(p.Elem())...)
			args = append(args, p)
		default:
			args = append(args, reflect.Zero(in))
		}
	}
	return args, query
}

// fill sets every optional field of a parameters struct to a value and
// returns the names of the query parameters among them.
func fill(params reflect.Value) []string {
	var query []string
	for i := range params.NumField() {
		f, sf := params.Field(i), params.Type().Field(i)
		if f.Kind() != reflect.Pointer {
			continue
		}
		v := reflect.New(f.Type().Elem())
		switch e := v.Elem(); {
		case e.Type() == reflect.TypeFor[time.Time]():
			e.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
		case e.Kind() == reflect.String:
			e.SetString("x")
		case e.CanInt():
			e.SetInt(1)
		case e.Kind() == reflect.Bool:
			e.SetBool(true)
		case e.Kind() == reflect.Slice:
			e.Set(reflect.MakeSlice(e.Type(), 1, 1))
		default:
			continue
		}
		f.Set(v)
		if name, ok := strings.CutSuffix(sf.Tag.Get("form"), ",omitempty"); ok {
			query = append(query, name)
		}
	}
	return query
}
