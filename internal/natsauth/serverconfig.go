package natsauth

import (
	"fmt"
	"strings"
)

// ServerConfig returns the nats-server configuration block that makes a
// production NATS server (or every node of a cluster) trust these keys: the
// operator, the system account, and a full resolver holding the platform
// account, which takes tenant accounts pushed by VRSky at run time. jwtDir
// is where each server keeps the account JWTs.
func (k *Keys) ServerConfig(jwtDir string) (string, error) {
	operator, err := k.OperatorClaims()
	if err != nil {
		return "", err
	}
	operatorJWT, err := operator.Encode(k.Operator)
	if err != nil {
		return "", err
	}
	sys, err := k.SystemAccountJWT()
	if err != nil {
		return "", err
	}
	platform, err := k.PlatformAccountJWT()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# VRSky: one NATS account per tenant, signed by this operator.\n")
	fmt.Fprintf(&b, "operator: %q\n", operatorJWT)
	fmt.Fprintf(&b, "system_account: %s\n", public(k.System))
	fmt.Fprintf(&b, "resolver: {\n  type: full\n  dir: %q\n  allow_delete: true\n  interval: \"2m\"\n}\n", jwtDir)
	fmt.Fprintf(&b, "resolver_preload: {\n  %s: %q\n  %s: %q\n}\n", public(k.System), sys, public(k.Platform), platform)
	return b.String(), nil
}
