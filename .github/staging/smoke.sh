#!/usr/bin/env bash
# Smoke test of a VRSky installed by .github/workflows/staging.yml: creates a
# tenant with the platform admin key, applies examples/webhook-to-file.yaml
# (webhook -> json-transform -> router -> file), posts one order to its
# webhook and checks the order arrives in the runners' file root (in both
# orders/ and, its total being 1500, big-orders/), read from
# the shared volume by a pod of its own (the image has no shell to exec).
#
# Environment: VRSKY_API_URL (the api Service, port-forwarded), VRSKY_ADMIN_KEY,
# VRSKY_BIN (a vrsky binary for `vrsky apply`), NAMESPACE (default vrsky),
# FILES_CLAIM (the runners' PersistentVolumeClaim, default vrsky-files).
set -euo pipefail

api="${VRSKY_API_URL:?}"
admin="${VRSKY_ADMIN_KEY:?}"
vrsky="${VRSKY_BIN:-vrsky}"
ns="${NAMESPACE:-vrsky}"
claim="${FILES_CLAIM:-vrsky-files}"
tenant="smoke$(date +%s)"
order="order-$RANDOM$RANDOM"

echo "smoke: create tenant $tenant"
created="$(curl -fsS -X POST "$api/v1/tenants" -H "Authorization: Bearer $admin" \
	-H 'Content-Type: application/json' -d "{\"id\":\"$tenant\",\"name\":\"$tenant\"}")"
key="$(jq -r .api_key.secret <<<"$created")"
if [ -z "$key" ] || [ "$key" = null ]; then
	echo "smoke: no API key in the answer to POST /v1/tenants" >&2
	exit 1
fi
status=""
for _ in $(seq 120); do
	status="$(curl -fsS "$api/v1/tenants/$tenant" -H "Authorization: Bearer $admin" | jq -r .status)"
	case "$status" in
	active) break ;;
	failed) echo "smoke: tenant provisioning failed" >&2; exit 1 ;;
	esac
	sleep 1
done
[ "$status" = active ] || { echo "smoke: tenant still $status" >&2; exit 1; }

echo "smoke: apply examples/webhook-to-file.yaml"
"$vrsky" apply --api "$api" --key "$key" --tenant "$tenant" -f examples/webhook-to-file.yaml --timeout 180s

echo "smoke: send $order"
curl -fsS -X POST "$api/v1/hooks/$tenant/order-files" -H 'Content-Type: application/json' \
	-H "Idempotency-Key: $order" -d "{\"id\":\"$order\",\"items\":[{\"qty\":3,\"price\":500}]}"
echo

echo "smoke: wait for $order in files/$tenant/orders and files/$tenant/big-orders"
kubectl -n "$ns" delete pod smoke-reader --ignore-not-found --wait
kubectl -n "$ns" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: smoke-reader
spec:
  restartPolicy: Never
  securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 }
  containers:
    - name: reader
      image: busybox:1.37
      command: ["sh", "-c"]
      args:
        - |
          for i in \$(seq 90); do
            if grep -qs '"$order"' /files/$tenant/orders/* && grep -qs '"$order"' /files/$tenant/big-orders/*; then
              cat /files/$tenant/orders/*; exit 0
            fi
            sleep 2
          done
          ls -lR /files/$tenant || true; exit 1
      volumeMounts: [{ name: files, mountPath: /files, readOnly: true }]
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
  volumes:
    - name: files
      persistentVolumeClaim: { claimName: $claim, readOnly: true }
YAML
if ! kubectl -n "$ns" wait pod/smoke-reader --for=jsonpath='{.status.phase}'=Succeeded --timeout=240s; then
	kubectl -n "$ns" logs pod/smoke-reader || true
	echo "smoke: $order was not delivered" >&2
	exit 1
fi
kubectl -n "$ns" logs pod/smoke-reader
echo "smoke: delivered"
