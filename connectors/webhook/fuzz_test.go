package webhook_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/webhook"
)

// FuzzVerify feeds random headers and bodies to every scheme: Verify never
// panics, and input not signed with the secret never verifies.
func FuzzVerify(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "1800000000", "msg_1", []byte("Hello, World!"))
	f.Add("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "1800000000", "", []byte("token=x"))
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,AAAA", "1800000000", "msg_p5", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", []byte{})
	f.Add("v1,", "-1", "a.b", []byte{0xff})
	env := secrets(map[string]string{"k": "fuzz-secret", "std": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	var verifiers []webhook.Verifier
	for _, cfg := range []string{
		`{"signature":{"scheme":"github","secret":{"secret":"k"}}}`,
		`{"signature":{"scheme":"slack","secret":{"secret":"k"}}}`,
		`{"signature":{"scheme":"standard","secret":{"secret":"std"}}}`,
		`{"signature":{"scheme":"hmac","secret":{"secret":"k"},"encoding":"base64","prefix":"sha256="}}`,
		`{"signature":{"scheme":"hmac","secret":{"secret":"k"},"algorithm":"sha1"}}`,
	} {
		v, _, err := webhook.NewVerifier(f.Context(), env, json.RawMessage(cfg))
		require.NoError(f, err)
		verifiers = append(verifiers, v)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, sig, ts, id string, body []byte) {
		h := http.Header{}
		for _, name := range []string{webhook.HeaderGitHub, webhook.HeaderSlack, webhook.HeaderStandardSig, webhook.DefaultHeader} {
			h.Set(name, sig)
		}
		h.Set(webhook.HeaderSlackTimestamp, ts)
		h.Set(webhook.HeaderStandardTime, ts)
		h.Set(webhook.HeaderStandardID, id)
		for _, v := range verifiers {
			if err := v.Verify(h, body, now); err == nil {
				t.Fatalf("%T verified a random signature %q over %q", v, sig, body)
			} else {
				require.ErrorIs(t, err, webhook.ErrSignature)
			}
		}
	})
}
