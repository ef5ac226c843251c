#!/usr/bin/env bash
# Publish a signed regshift request with kcat and openssl only — what
# docs/publishing-requests.md describes, as a script the tests run against
# the real broker.
#
#   BROKER=127.0.0.1:9092 TOPIC=regshift.requests KEY=alice.key \
#   ROLLOUT=ro-2026-11-26-consul KIND=pause \
#   REASON="change freeze" events/testdata/publish-request.sh
#
# KIND is pause | resume | approve | abort | finalize. KEY is a private key
# from `regshift keys generate`; its key id is the file name without .key.
# REQUESTED_BY defaults to the key id: the coordinator refuses any other
# (requester-mismatch). It prints the request id it published.
set -euo pipefail
: "${BROKER:?}" "${TOPIC:?}" "${KEY:?}" "${ROLLOUT:?}"
KIND=${KIND:-pause}
REASON=${REASON:-}
KEY_ID=${KEY_ID:-$(basename "$KEY" .key)}
REQUESTED_BY=${REQUESTED_BY:-$KEY_ID}
export LC_ALL=C # lengths below are byte counts

TYPE="regshift.request.${KIND}.v1"
ID="req-$(date -u +%Y%m%dT%H%M%S)-$(openssl rand -hex 4)"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# The body: compact JSON on one line, exactly the bytes that are signed.
# (REASON must not contain quotes or backslashes here; build real bodies
# with a JSON tool.)
BODY="{\"request_id\":\"$ID\",\"requested_at\":\"$NOW\",\"rollout_id\":\"$ROLLOUT\",\"requested_by\":\"$REQUESTED_BY\""
[[ -n "$REASON" ]] && BODY="$BODY,\"reason\":\"$REASON\""
BODY="$BODY}"

# Sign DSSE's pre-authentication encoding of (type, body) with Ed25519
# (openssl needs the whole message in a file for a one-shot signature).
PAE=$(mktemp)
trap 'rm -f "$PAE"' EXIT
printf 'DSSEv1 %d %s %d %s' "${#TYPE}" "$TYPE" "${#BODY}" "$BODY" >"$PAE"
SIG=$(openssl pkeyutl -sign -inkey "$KEY" -rawin -in "$PAE" | base64 -w0)

printf '%s' "$BODY" | kcat -P -b "$BROKER" -t "$TOPIC" -k "$ROLLOUT" \
	-H "ce_id=$ID" \
	-H "ce_type=$TYPE" \
	-H "ce_source=kcat/$(hostname)" \
	-H "ce_specversion=1.0" \
	-H "ce_time=$NOW" \
	-H "content-type=application/json" \
	-H "partitionkey=$ROLLOUT" \
	-H "ce_keyid=$KEY_ID" \
	-H "ce_signature=$SIG" \
	-X acks=all
echo "$ID"
