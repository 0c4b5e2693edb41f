package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/connectors/webhook"
)

// secrets resolves tenant secrets from a fixed map.
func secrets(values map[string]string) sdk.Env {
	return sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "hooks", Secrets: func(_ context.Context, name string) (string, error) {
		v, ok := values[name]
		if !ok {
			return "", context.Canceled
		}
		return v, nil
	}}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, webhook.Connector, secrets(map[string]string{"gh": "gh-secret"}),
		json.RawMessage(`{"signature":{"scheme":"github","secret":{"secret":"gh"}},"maxBytes":1048576}`),
		map[string]json.RawMessage{
			"unknown scheme":          json.RawMessage(`{"signature":{"scheme":"md5","secret":{"env":"X"}}}`),
			"no scheme":               json.RawMessage(`{"signature":{"secret":{"env":"X"}}}`),
			"no secret":               json.RawMessage(`{"signature":{"scheme":"github"}}`),
			"inline secret":           json.RawMessage(`{"signature":{"scheme":"github","secret":"hunter2"}}`),
			"header on github":        json.RawMessage(`{"signature":{"scheme":"github","secret":{"env":"X"},"header":"X-Sig"}}`),
			"prefix on slack":         json.RawMessage(`{"signature":{"scheme":"slack","secret":{"env":"X"},"prefix":"v0="}}`),
			"tolerance on hmac":       json.RawMessage(`{"signature":{"scheme":"hmac","secret":{"env":"X"},"tolerance":"1m"}}`),
			"bad algorithm":           json.RawMessage(`{"signature":{"scheme":"hmac","secret":{"env":"X"},"algorithm":"md5"}}`),
			"bad encoding":            json.RawMessage(`{"signature":{"scheme":"hmac","secret":{"env":"X"},"encoding":"base32"}}`),
			"bad header name":         json.RawMessage(`{"signature":{"scheme":"hmac","secret":{"env":"X"},"header":"X Sig"}}`),
			"long prefix":             json.RawMessage(`{"signature":{"scheme":"hmac","secret":{"env":"X"},"prefix":"` + strings.Repeat("a", 101) + `"}}`),
			"bad tolerance":           json.RawMessage(`{"signature":{"scheme":"slack","secret":{"env":"X"},"tolerance":"soon"}}`),
			"tolerance out of range":  json.RawMessage(`{"signature":{"scheme":"standard","secret":{"env":"X"},"tolerance":"48h"}}`),
			"negative maxBytes":       json.RawMessage(`{"maxBytes":-1}`),
			"maxBytes over the limit": json.RawMessage(`{"maxBytes":67108865}`),
			"malformed":               json.RawMessage(`{"signature":`),
			"inline token":            json.RawMessage(`{"token":"hunter2hunter2hunter2"}`),
			"empty event type":        json.RawMessage(`{"events":[""]}`),
			"long event type":         json.RawMessage(`{"ignore":["` + strings.Repeat("e", 101) + `"]}`),
			"bad event header":        json.RawMessage(`{"eventHeader":"X Event"}`),
			"unknown key memory":      json.RawMessage(`{"keyMemory":"forever"}`),
		})
}

func TestNoSignatureGivesNilVerifier(t *testing.T) {
	for _, raw := range []string{``, `null`, `{}`, `{"maxBytes":2048}`} {
		v, maxBytes, err := webhook.NewVerifier(t.Context(), sdk.Env{LookupEnv: os.LookupEnv}, json.RawMessage(raw))
		require.NoError(t, err, raw)
		require.Nil(t, v, raw)
		if raw == `{"maxBytes":2048}` {
			require.EqualValues(t, 2048, maxBytes)
		} else {
			require.Zero(t, maxBytes)
		}
	}
}

func mac(newHash func() hash.Hash, key []byte, data string) []byte {
	m := hmac.New(newHash, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestPublishedVectors checks each scheme against the example its
// provider publishes.
func TestPublishedVectors(t *testing.T) {
	env := secrets(map[string]string{
		"gh":       "It's a Secret to Everybody",
		"slack":    "8f742231b10e8888abcd99yyyzzz85a5",
		"standard": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	slackBody := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	tests := []struct {
		name, cfg, body string
		h               http.Header
		now             time.Time
	}{
		{"github", `{"signature":{"scheme":"github","secret":{"secret":"gh"}}}`, "Hello, World!",
			headers("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), time.Now()},
		{"slack", `{"signature":{"scheme":"slack","secret":{"secret":"slack"}}}`, slackBody,
			headers("X-Slack-Request-Timestamp", "1531420618", "X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
			time.Unix(1531420618+30, 0)},
		{"standard webhooks", `{"signature":{"scheme":"standard","secret":{"secret":"standard"}}}`, `{"test": 2432232314}`,
			headers("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			time.Unix(1614265330, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := webhook.NewVerifier(t.Context(), env, json.RawMessage(tt.cfg))
			require.NoError(t, err)
			require.NoError(t, v.Verify(tt.h, []byte(tt.body), tt.now))
			require.ErrorIs(t, v.Verify(tt.h, []byte(tt.body+" "), tt.now), webhook.ErrSignature, "a changed body fails")
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "s3cr3t-signing-key"
	stdKey := []byte("0123456789abcdef0123456789abcdef")
	env := secrets(map[string]string{"k": secret, "std": "whsec_" + base64.StdEncoding.EncodeToString(stdKey), "stdbare": base64.StdEncoding.EncodeToString(stdKey)})
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10)
	body := `{"event":"push"}`

	gh := "sha256=" + hex.EncodeToString(mac(sha256.New, []byte(secret), body))
	slackSig := func(ts string) string {
		return "v0=" + hex.EncodeToString(mac(sha256.New, []byte(secret), "v0:"+ts+":"+body))
	}
	stdSig := func(id, ts string) string {
		return "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, stdKey, id+"."+ts+"."+body))
	}

	const (
		ghCfg    = `{"signature":{"scheme":"github","secret":{"secret":"k"}}}`
		slackCfg = `{"signature":{"scheme":"slack","secret":{"secret":"k"}}}`
		stdCfg   = `{"signature":{"scheme":"standard","secret":{"secret":"std"}}}`
	)
	tests := []struct {
		name   string
		cfg    string
		h      http.Header
		reason string // "" means the signature verifies
	}{
		{"github valid", ghCfg, headers("X-Hub-Signature-256", gh), ""},
		{"github uppercase hex", ghCfg, headers("X-Hub-Signature-256", "sha256="+strings.ToUpper(hex.EncodeToString(mac(sha256.New, []byte(secret), body)))), ""},
		{"github missing", ghCfg, headers(), "no X-Hub-Signature-256 header"},
		{"github sha1 header only", ghCfg, headers("X-Hub-Signature", "sha1="+hex.EncodeToString(mac(sha1.New, []byte(secret), body))), "no X-Hub-Signature-256"},
		{"github wrong prefix", ghCfg, headers("X-Hub-Signature-256", "sha1="+gh[7:]), "expected prefix"},
		{"github not hex", ghCfg, headers("X-Hub-Signature-256", "sha256=zz"), "not well-formed"},
		{"github wrong secret", ghCfg, headers("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, []byte("other"), body))), "does not match"},
		{"github truncated", ghCfg, headers("X-Hub-Signature-256", gh[:len(gh)-2]), "does not match"},

		{"slack valid", slackCfg, headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", slackSig(ts)), ""},
		{"slack stale", slackCfg, headers("X-Slack-Request-Timestamp", stale, "X-Slack-Signature", slackSig(stale)), "outside the accepted window"},
		{"slack from the future", slackCfg, headers("X-Slack-Request-Timestamp", future, "X-Slack-Signature", slackSig(future)), "outside the accepted window"},
		{"slack timestamp swapped", slackCfg, headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", slackSig(strconv.FormatInt(now.Unix()-1, 10))), "does not match"},
		{"slack signed timestamp with a sign", slackCfg, headers("X-Slack-Request-Timestamp", "+"+ts, "X-Slack-Signature", slackSig("+"+ts)), "not Unix seconds"},
		{"slack huge timestamp", slackCfg, headers("X-Slack-Request-Timestamp", "999999999999", "X-Slack-Signature", slackSig("999999999999")), "outside"},
		{"slack too long timestamp", slackCfg, headers("X-Slack-Request-Timestamp", "9999999999999999999999", "X-Slack-Signature", "v0=00"), "not Unix seconds"},
		{"slack no timestamp", slackCfg, headers("X-Slack-Signature", slackSig(ts)), "no X-Slack-Request-Timestamp"},
		{"slack no signature", slackCfg, headers("X-Slack-Request-Timestamp", ts), "no X-Slack-Signature"},
		{"slack wrong version", slackCfg, headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v1="+slackSig(ts)[3:]), "not a v0 signature"},
		{"slack not hex", slackCfg, headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0=xyz"), "not well-formed"},

		{"standard valid", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", stdSig("msg_1", ts)), ""},
		{"standard one of several", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", ts,
			"webhook-signature", "v1a,AAAA v1,bm90IGl0 "+stdSig("msg_1", ts)), ""},
		{"standard secret without prefix", `{"signature":{"scheme":"standard","secret":{"secret":"stdbare"}}}`,
			headers("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", stdSig("msg_1", ts)), ""},
		{"standard other id", stdCfg, headers("webhook-id", "msg_2", "webhook-timestamp", ts, "webhook-signature", stdSig("msg_1", ts)), "does not match"},
		{"standard stale", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", stale, "webhook-signature", stdSig("msg_1", stale)), "outside the accepted window"},
		{"standard no id", stdCfg, headers("webhook-timestamp", ts, "webhook-signature", stdSig("msg_1", ts)), "no Webhook-Id"},
		{"standard no timestamp", stdCfg, headers("webhook-id", "msg_1", "webhook-signature", stdSig("msg_1", ts)), "no Webhook-Timestamp"},
		{"standard no signature", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", ts), "no Webhook-Signature"},
		{"standard only other versions", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", "v1a,AAAA v2,BBBB"), "no v1 signature"},
		{"standard not base64", stdCfg, headers("webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", "v1,!!!"), "does not match"},

		{"hmac defaults", `{"signature":{"scheme":"hmac","secret":{"secret":"k"}}}`,
			headers("X-Signature", hex.EncodeToString(mac(sha256.New, []byte(secret), body))), ""},
		{"hmac sha512 base64 prefix", `{"signature":{"scheme":"hmac","secret":{"secret":"k"},"header":"X-Shopify-Hmac-Sha256","algorithm":"sha512","encoding":"base64","prefix":"sha512="}}`,
			headers("X-Shopify-Hmac-Sha256", "sha512="+base64.StdEncoding.EncodeToString(mac(sha512.New, []byte(secret), body))), ""},
		{"hmac sha1", `{"signature":{"scheme":"hmac","secret":{"secret":"k"},"algorithm":"sha1"}}`,
			headers("X-Signature", hex.EncodeToString(mac(sha1.New, []byte(secret), body))), ""},
		{"hmac sha256 where sha1 is configured", `{"signature":{"scheme":"hmac","secret":{"secret":"k"},"algorithm":"sha1"}}`,
			headers("X-Signature", hex.EncodeToString(mac(sha256.New, []byte(secret), body))), "does not match"},
		{"hmac missing prefix", `{"signature":{"scheme":"hmac","secret":{"secret":"k"},"prefix":"sha256="}}`,
			headers("X-Signature", hex.EncodeToString(mac(sha256.New, []byte(secret), body))), "expected prefix"},
		{"hmac empty header", `{"signature":{"scheme":"hmac","secret":{"secret":"k"}}}`, headers("X-Signature", "  "), "no X-Signature header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := webhook.NewVerifier(t.Context(), env, json.RawMessage(tt.cfg))
			require.NoError(t, err)
			require.NotNil(t, v)
			err = v.Verify(tt.h, []byte(body), now)
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, webhook.ErrSignature)
			require.ErrorContains(t, err, tt.reason)
			require.NotContains(t, err.Error(), secret, "errors never echo the secret")
			require.NotContains(t, err.Error(), gh[7:], "errors never echo the expected signature")
		})
	}
}

func TestToleranceIsConfigurable(t *testing.T) {
	env := secrets(map[string]string{"k": "key"})
	v, _, err := webhook.NewVerifier(t.Context(), env, json.RawMessage(`{"signature":{"scheme":"slack","secret":{"secret":"k"},"tolerance":"30s"}}`))
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Add(-45*time.Second).Unix(), 10)
	sig := "v0=" + hex.EncodeToString(mac(sha256.New, []byte("key"), "v0:"+ts+":x"))
	h := headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sig)
	require.ErrorContains(t, v.Verify(h, []byte("x"), now), "outside the accepted window")
	require.NoError(t, v.Verify(h, []byte("x"), now.Add(-20*time.Second)))
}

func TestNewVerifierErrorsDoNotLeakTheSecret(t *testing.T) {
	env := secrets(map[string]string{"notb64": "whsec_not*base64*value", "empty": ""})
	tests := []struct{ name, cfg, want string }{
		{"unresolvable secret", `{"signature":{"scheme":"github","secret":{"secret":"missing"}}}`, "resolve signature secret"},
		{"unset env", `{"signature":{"scheme":"github","secret":{"env":"VRSKY_WEBHOOK_TEST_UNSET"}}}`, "not set"},
		{"empty secret", `{"signature":{"scheme":"github","secret":{"secret":"empty"}}}`, "is empty"},
		{"standard secret not base64", `{"signature":{"scheme":"standard","secret":{"secret":"notb64"}}}`, "not base64"},
		{"bad config", `{"signature":{"scheme":"nope","secret":{"secret":"x"}}}`, "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := webhook.NewVerifier(t.Context(), env, json.RawMessage(tt.cfg))
			require.Nil(t, v)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "not*base64*value")
		})
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	t.Setenv("VRSKY_WEBHOOK_TEST_SECRET", "from-env")
	v, _, err := webhook.NewVerifier(t.Context(), sdk.Env{LookupEnv: os.LookupEnv}, json.RawMessage(`{"signature":{"scheme":"github","secret":{"env":"VRSKY_WEBHOOK_TEST_SECRET"}}}`))
	require.NoError(t, err)
	h := headers("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, []byte("from-env"), "b")))
	require.NoError(t, v.Verify(h, []byte("b"), time.Now()))
}
