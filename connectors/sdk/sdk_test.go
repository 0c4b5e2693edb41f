package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCloneIsIndependent(t *testing.T) {
	m := Message{ID: "1", Body: []byte("abc")}
	m.SetHeader("k", "v")
	c := m.Clone()
	c.Body[0] = 'X'
	c.SetHeader("k", "changed")
	require.Equal(t, "abc", string(m.Body))
	require.Equal(t, "v", m.Header("k"))
	require.Equal(t, "", Message{}.Header("missing"))
	require.Nil(t, Message{}.Clone().Headers)
}

func TestRecordedJSONFollowsTheBody(t *testing.T) {
	var m Message
	_, ok := m.JSON()
	require.False(t, ok, "nothing recorded")

	body := []byte(`{"a":1}`)
	value := map[string]any{"a": 1}
	m.SetJSON(body, value)
	require.Equal(t, body, m.Body)
	got, ok := m.JSON()
	require.True(t, ok)
	require.Equal(t, value, got)

	copied := m
	got, ok = copied.JSON()
	require.True(t, ok, "a copy shares the recorded value")
	require.Equal(t, value, got)

	tests := map[string]func(*Message){
		"new body":          func(m *Message) { m.Body = []byte(`{"a":1}`) },
		"shorter body":      func(m *Message) { m.Body = m.Body[:3] },
		"later start":       func(m *Message) { m.Body = m.Body[1:] },
		"no body":           func(m *Message) { m.Body = nil },
		"clone":             func(m *Message) { *m = m.Clone() },
		"empty body record": func(m *Message) { m.SetJSON(nil, "x") },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			c := m
			change(&c)
			_, ok := c.JSON()
			require.False(t, ok)
			_, ok = m.JSON()
			require.True(t, ok, "the original keeps its record")
		})
	}
}

func TestErrorKinds(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name      string
		err       error
		permanent bool
		after     time.Duration
	}{
		{"plain errors are retryable", base, false, 0},
		{"permanent", PermanentError(base), true, 0},
		{"permanentf", Permanentf("bad %d", 1), true, 0},
		{"retryable with delay", RetryableError(base, 3*time.Second), false, 3 * time.Second},
		{"wrapped permanent", fmt.Errorf("step: %w", PermanentError(base)), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.permanent, IsPermanent(tt.err))
			require.Equal(t, tt.after, RetryAfterOf(tt.err))
		})
	}
	require.NoError(t, PermanentError(nil))
	require.NoError(t, RetryableError(nil, time.Second))
	require.ErrorIs(t, PermanentError(base), base)
	require.Equal(t, "boom", PermanentError(base).Error())
	require.Equal(t, "2 messages of the batch failed", (&BatchError{Failed: map[int]error{0: base, 3: base}}).Error())
}

func TestCatalogLooksUpByKindAndName(t *testing.T) {
	c := NewCatalog(
		Connector{Name: "file", Kind: KindConsumer},
		Connector{Name: "file", Kind: KindProducer, Summary: "writes"},
		Connector{Name: "router", Kind: KindFilter},
	)
	got, ok := c.Lookup("file", KindProducer)
	require.True(t, ok)
	require.Equal(t, "writes", got.Summary)
	_, ok = c.Lookup("router", KindConverter)
	require.False(t, ok)
	_, ok = c.Lookup("router", KindConverter, KindFilter)
	require.True(t, ok)
	all := c.All()
	require.Len(t, all, 3)
	require.Equal(t, KindConsumer, all[0].Kind)
	require.Equal(t, "router", all[2].Name)
}

func TestSecretRefusesInlineValuesAndNeverPrints(t *testing.T) {
	var cfg struct {
		Token Secret `json:"token"`
	}
	require.ErrorContains(t, json.Unmarshal([]byte(`{"token":"hunter2"}`), &cfg), "cannot be inline")
	require.Error(t, json.Unmarshal([]byte(`{"token":{}}`), &cfg))
	require.Error(t, json.Unmarshal([]byte(`{"token":{"env":"A","secret":"B"}}`), &cfg))
	require.Error(t, json.Unmarshal([]byte(`{"token":{"env":"bad name"}}`), &cfg))
	require.Error(t, json.Unmarshal([]byte(`{"token":{"value":"x"}}`), &cfg))

	require.NoError(t, json.Unmarshal([]byte(`{"token":{"env":"VRSKY_TEST_TOKEN"}}`), &cfg))
	v, err := cfg.Token.Resolve(context.Background(), Env{LookupEnv: func(name string) (string, bool) {
		return map[string]string{"VRSKY_TEST_TOKEN": "hunter2"}[name], name == "VRSKY_TEST_TOKEN"
	}})
	require.NoError(t, err)
	require.Equal(t, "hunter2", v)
	require.Equal(t, "env:VRSKY_TEST_TOKEN", cfg.Token.String())
	require.Equal(t, "env:VRSKY_TEST_TOKEN", cfg.Token.LogValue().String())
	out, _ := json.Marshal(cfg)
	require.NotContains(t, string(out), "hunter2")

	require.NoError(t, json.Unmarshal([]byte(`{"token":{"secret":"slack"}}`), &cfg))
	_, err = cfg.Token.Resolve(context.Background(), Env{})
	require.ErrorContains(t, err, "not available")
	v, err = cfg.Token.Resolve(context.Background(), Env{Secrets: func(_ context.Context, name string) (string, error) { return "from-" + name, nil }})
	require.NoError(t, err)
	require.Equal(t, "from-slack", v)
	_, err = cfg.Token.Resolve(context.Background(), Env{Secrets: func(context.Context, string) (string, error) { return "", errors.New("no such secret") }})
	require.ErrorContains(t, err, "no such secret")

	_, err = Secret{Env: "VRSKY_UNSET_FOR_TEST"}.Resolve(context.Background(), Env{LookupEnv: func(string) (string, bool) { return "", false }})
	require.ErrorContains(t, err, "not set")
	_, err = Secret{Env: "VRSKY_EMPTY_FOR_TEST"}.Resolve(context.Background(), Env{LookupEnv: func(string) (string, bool) { return "", true }})
	require.ErrorContains(t, err, "not set")
	require.True(t, Secret{}.IsZero())
	require.Equal(t, "unset", Secret{}.String())
	require.Error(t, Secret{Secret: "bad name"}.Validate())
}

// A reference to the platform's own environment resolves only through
// env.LookupEnv, which the platform fills with its operator's allow-list:
// never from the process environment itself.
func TestSecretNeverReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("VRSKY_DATABASE_URL", "postgres://vrsky:platform-password@db/vrsky")
	t.Setenv("VRSKY_S3_SECRET_KEY", "platform-s3-secret")
	for _, name := range []string{"VRSKY_DATABASE_URL", "VRSKY_S3_SECRET_KEY"} {
		ref := Secret{Env: name}
		// No LookupEnv: refused, whatever the process has.
		v, err := ref.Resolve(context.Background(), Env{Tenant: "evil"})
		require.ErrorContains(t, err, "environment variables are not available", name)
		require.Empty(t, v)
		require.NotContains(t, err.Error(), "platform-")

		// A LookupEnv that does not allow the name: refused too.
		v, err = ref.Resolve(context.Background(), Env{Tenant: "evil", LookupEnv: func(string) (string, bool) { return "", false }})
		require.ErrorContains(t, err, "not allowed", name)
		require.Empty(t, v)
	}
}

type nestedConfig struct {
	Header string `json:"header,omitempty" doc:"Header name."`
}

type exampleConfig struct {
	URL       string       `json:"url" doc:"Where to send."`
	Method    string       `json:"method,omitempty" enum:"POST,PUT"`
	Token     Secret       `json:"token,omitzero"`
	Signature nestedConfig `json:"signature,omitzero"`
}

func TestConfigSchemaIsGeneratedFromTheStruct(t *testing.T) {
	raw, err := ConfigSchema(Connector{Name: "example", Summary: "Sends things.", NewConfig: func() any { return &exampleConfig{} }})
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Equal(t, "object", doc["type"])
	require.Equal(t, "example", doc["title"])
	require.Equal(t, "Sends things.", doc["description"])
	props := doc["properties"].(map[string]any)
	require.Equal(t, "Where to send.", props["url"].(map[string]any)["description"])
	require.Equal(t, []any{"POST", "PUT"}, props["method"].(map[string]any)["enum"])
	require.Contains(t, props["token"].(map[string]any)["$ref"], "#/$defs/")
	require.Contains(t, doc["$defs"], "Secret")
	require.Contains(t, doc["required"], "url")

	_, err = ConfigSchema(Connector{Name: "bad", NewConfig: func() any { return exampleConfig{} }})
	require.Error(t, err)
	raw, err = ConfigSchema(Connector{Name: "none"})
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"object","additionalProperties":false}`, string(raw))
}

func TestValidMessageID(t *testing.T) {
	for id, want := range map[string]bool{
		"order-1": true, "~!@#": true, strings.Repeat("a", MaxMessageID): true,
		"": false, "a b": false, "a\r\nb": false, "é": false, "a\x00": false, strings.Repeat("a", MaxMessageID+1): false,
	} {
		require.Equal(t, want, ValidMessageID(id), "%q", id)
	}
}

func TestRefusalNamesItsDetailOnly(t *testing.T) {
	err := Refuse(RefuseUnauthenticated, "invalid or missing signature")
	var r *Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, RefuseUnauthenticated, r.Kind)
	require.Equal(t, "invalid or missing signature", err.Error())
	require.False(t, IsPermanent(err), "a refusal is the request's answer, not a message's failure")
}

// TestKeyMemoryNamesTheDeliveryUnlessWindow: remember (and the zero value)
// hands the key to the platform, window does not; anything else is
// refused, naming the field.
func TestKeyMemoryNamesTheDeliveryUnlessWindow(t *testing.T) {
	for _, m := range []KeyMemory{"", KeyMemoryRemember, KeyMemoryWindow} {
		require.NoError(t, m.Validate(), m)
	}
	require.Equal(t, "k", KeyMemory("").DeliveryKey("k"))
	require.Equal(t, "k", KeyMemoryRemember.DeliveryKey("k"))
	require.Empty(t, KeyMemoryWindow.DeliveryKey("k"))
	for _, m := range []KeyMemory{"Window", "forever", " remember"} {
		require.ErrorContains(t, m.Validate(), "keyMemory: unknown value", m)
	}
}
