#!/usr/bin/env bash
# REST calls to a kerasseg model on TF Serving with curl.
# Usage: export/clients/predict.sh IMAGE.png [MODEL] [HOST:PORT]
set -euo pipefail
image="${1:?usage: predict.sh IMAGE.png [MODEL] [HOST:PORT]}"
model="${2:-unet}"
server="${3:-localhost:8501}"

echo "# status"
curl -sS --fail-with-body "http://${server}/v1/models/${model}"
echo "# metadata (signatures)"
curl -sS --fail-with-body "http://${server}/v1/models/${model}/metadata" | head -c 2000
echo
echo "# predict with serving_bytes"
request="$(mktemp)"
trap 'rm -f "$request"' EXIT
printf '{"signature_name": "serving_bytes", "instances": [{"image_bytes": {"b64": "%s"}}]}' \
  "$(base64 -w0 "$image")" > "$request"
curl -sS --fail-with-body --max-time 60 -X POST -H "Content-Type: application/json" \
  -d @"$request" "http://${server}/v1/models/${model}:predict" | head -c 2000
echo
