// Package sdktest is the conformance kit every connector's tests call: it
// checks the contract in connectors/sdk that any connector must keep,
// whatever it connects to.
//
// It is for tests only and must never be imported by production code.
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Prompt is how long a call with a cancelled context may take.
const Prompt = 2 * time.Second

// Conformance checks c against the connector contract:
//
//   - it has a name, kind and summary, and NewConfig returns a pointer to a
//     struct whose exported fields (nested structs too) all have json tags;
//   - Build with goodConfig succeeds and returns the interface c.Kind names
//     (and a Poller when c.Polls), or an sdk.Ingress when c.Ingress;
//   - an Ingress never answers 2xx once its sink's Publish failed, and
//     answers only 2xx statuses;
//   - Build fails with a non-empty error for every bad config, and for
//     goodConfig with an unknown field added;
//   - Convert, Filter, Write, Run or Poll with a cancelled context return
//     within Prompt, and any error they return is not permanent (a cancellation is
//     never the message's fault);
//   - a producer's Close may be called twice, and concurrently;
//   - once those calls returned and the producer is closed, no goroutine of
//     the connector's package is left running.
func Conformance(t *testing.T, c sdk.Connector, env sdk.Env, goodConfig json.RawMessage, badConfigs map[string]json.RawMessage) {
	t.Helper()
	ctx := t.Context()

	t.Run("description", func(t *testing.T) {
		require.NotEmpty(t, c.Name, "name")
		require.Contains(t, []sdk.Kind{sdk.KindConsumer, sdk.KindConverter, sdk.KindFilter, sdk.KindProducer}, c.Kind, "kind")
		require.NotEmpty(t, c.Summary, "summary")
		require.NotNil(t, c.Build, "Build")
		require.NotNil(t, c.NewConfig, "NewConfig")
		cfg := c.NewConfig()
		v := reflect.ValueOf(cfg)
		require.Equal(t, reflect.Pointer, v.Kind(), "NewConfig must return a pointer, got %T", cfg)
		require.Equal(t, reflect.Struct, v.Elem().Kind(), "NewConfig must return a pointer to a struct, got %T", cfg)
		for _, missing := range untagged(v.Elem().Type(), nil) {
			t.Errorf("config field %s has no json tag", missing)
		}
	})

	t.Run("build good config", func(t *testing.T) {
		inst, err := c.Build(ctx, env, goodConfig)
		require.NoError(t, err)
		if c.Ingress {
			require.Equal(t, sdk.KindConsumer, c.Kind, "an ingress connector is a consumer")
			require.Implements(t, (*sdk.Ingress)(nil), inst, "the connector says it is an ingress")
			ingressNeverAcksAFailedPublish(t, inst.(sdk.Ingress))
		} else {
			checkKind(t, c.Kind, inst)
		}
		if c.Polls {
			require.Implements(t, (*sdk.Poller)(nil), inst, "the connector says it polls")
		}
		if p, ok := inst.(sdk.Producer); ok {
			closeTwice(t, p)
		}
	})

	for name, raw := range badConfigs {
		t.Run("bad config "+name, func(t *testing.T) {
			inst, err := c.Build(ctx, env, raw)
			if p, ok := inst.(sdk.Producer); ok && err == nil {
				_ = p.Close(ctx)
			}
			require.Error(t, err, "config %s", raw)
			require.NotEmpty(t, err.Error())
		})
	}

	t.Run("unknown field", func(t *testing.T) {
		fields := map[string]any{}
		if len(strings.TrimSpace(string(goodConfig))) > 0 {
			require.NoError(t, json.Unmarshal(goodConfig, &fields))
		}
		fields["noSuchOption"] = true
		raw, err := json.Marshal(fields)
		require.NoError(t, err)
		inst, err := c.Build(ctx, env, raw)
		if p, ok := inst.(sdk.Producer); ok && err == nil {
			_ = p.Close(ctx)
		}
		require.Error(t, err, "Build must reject unknown config fields")
	})

	t.Run("cancelled context", func(t *testing.T) {
		inst, err := c.Build(ctx, env, goodConfig)
		require.NoError(t, err)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		msg := sdk.Message{
			ID:          "conformance-1",
			Tenant:      env.Tenant,
			Integration: env.Integration,
			ContentType: "application/json",
			Body:        []byte(`{"id":"conformance-1","n":1}`),
			Received:    time.Now(),
		}
		done := make(chan error, 1)
		go func() {
			switch x := inst.(type) {
			case sdk.Converter:
				_, err := x.Convert(cancelled, msg)
				done <- err
			case sdk.Filter:
				_, err := x.Filter(cancelled, msg)
				done <- err
			case sdk.Producer:
				done <- x.Write(cancelled, []sdk.Message{msg})
			case sdk.Consumer:
				done <- x.Run(cancelled, discard{})
			case sdk.Ingress:
				_, err := x.Receive(cancelled, ingressRequest(msg.Body), failing{})
				done <- err
			}
		}()
		select {
		case err := <-done:
			if err != nil {
				require.False(t, sdk.IsPermanent(err), "a cancelled context gave a permanent error: %v", err)
			}
		case <-time.After(Prompt):
			t.Fatalf("%s ignored a cancelled context for %s", c.Name, Prompt)
		}
		if p, ok := inst.(sdk.Poller); ok && c.Polls {
			go func() {
				_, err := p.Poll(cancelled, discard{})
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					require.False(t, sdk.IsPermanent(err), "Poll with a cancelled context gave a permanent error: %v", err)
				}
			case <-time.After(Prompt):
				t.Fatalf("%s's Poll ignored a cancelled context for %s", c.Name, Prompt)
			}
		}
		if p, ok := inst.(sdk.Producer); ok {
			require.NoError(t, p.Close(ctx))
		}
		noGoroutineLeft(t, inst)
	})
}

// noGoroutineLeft fails when, once the instance is closed (producers) or its
// calls have returned, a goroutine is still running code of the connector's
// package.
func noGoroutineLeft(t *testing.T, inst any) {
	t.Helper()
	typ := reflect.TypeOf(inst)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	pkg := typ.PkgPath()
	if pkg == "" {
		return
	}
	var left string
	deadline := time.Now().Add(2 * time.Second)
	for {
		left = goroutinesIn(pkg)
		if left == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(t, left, "goroutines of %s still running after the call returned and Close", pkg)
}

// goroutinesIn returns the stacks of the goroutines that have a frame in
// package pkg (other than this check's own).
func goroutinesIn(pkg string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, pkg+".") && !strings.Contains(g, "sdktest.goroutinesIn") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func checkKind(t *testing.T, kind sdk.Kind, inst any) {
	t.Helper()
	var ok bool
	switch kind {
	case sdk.KindConsumer:
		_, ok = inst.(sdk.Consumer)
	case sdk.KindConverter:
		_, ok = inst.(sdk.Converter)
	case sdk.KindFilter:
		_, ok = inst.(sdk.Filter)
	case sdk.KindProducer:
		_, ok = inst.(sdk.Producer)
	}
	require.True(t, ok, "Build returned %T, which is not a %s", inst, kind)
}

func closeTwice(t *testing.T, p sdk.Producer) {
	t.Helper()
	ctx := t.Context()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- p.Close(ctx) }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.NoError(t, p.Close(ctx), "a third Close")
}

// untagged lists the exported fields of t, and of the structs it holds,
// that lack a json tag.
func untagged(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "" && t.Name() != "" {
		return nil
	}
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	if seen[t] {
		return nil
	}
	seen[t] = true
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name == "" {
			out = append(out, t.Name()+"."+f.Name)
		}
		if f.Type.PkgPath() == t.PkgPath() || f.Type.PkgPath() == "" {
			out = append(out, untagged(f.Type, seen)...)
		}
	}
	return out
}

type discard struct{}

// failing is an IngressSink whose Publish fails: with ctx's error once ctx
// ended, otherwise as a store that is down.
type failing struct{ called *bool }

func (f failing) Publish(ctx context.Context, _ sdk.Delivery) (sdk.PubAck, error) {
	if f.called != nil {
		*f.called = true
	}
	if err := ctx.Err(); err != nil {
		return sdk.PubAck{}, err
	}
	return sdk.PubAck{}, errors.New("sdktest: the store is down")
}

// ingressRequest is a plain JSON request with body.
func ingressRequest(body []byte) sdk.Request {
	return sdk.Request{
		Header:   http.Header{"Content-Type": {"application/json"}},
		URL:      &url.URL{Path: "/"},
		Body:     body,
		Received: time.Now(),
	}
}

// ingressNeverAcksAFailedPublish: Admit and Receive of a plain request do
// not panic; when Receive called a Publish that failed it returns an error,
// never an answer; a nil error comes with a 2xx status.
func ingressNeverAcksAFailedPublish(t *testing.T, in sdk.Ingress) {
	t.Helper()
	req := ingressRequest([]byte(`{"id":"conformance-1"}`))
	head := req
	head.Body = nil
	_ = in.Admit(head)
	called := false
	answer, err := in.Receive(t.Context(), req, failing{called: &called})
	if called {
		require.Error(t, err, "Receive answered %d although Publish failed", answer.Status)
	}
	if err == nil {
		require.GreaterOrEqual(t, answer.Status, 200, "a taken request answers 2xx")
		require.Less(t, answer.Status, 300, "a taken request answers 2xx")
	}
	require.GreaterOrEqual(t, in.BodyLimit(), int64(0), "BodyLimit")
}

func (discard) Publish(context.Context, []sdk.Message) error { return nil }
