#!/usr/bin/env bash
# The auditor's view and her own history, with curl, against a running demo server.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
SN=${SN:-.venv/bin/safety-net}
post() { curl -s "$BASE/graphql" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' ${2:+-H "Safety-Net-Purpose: $2"} -d "$3"; }

AUDITOR=$($SN token --org nhri --user auditor)
echo "== the NHRI auditor: denied accesses of overseen organisations (mofa, embassy, unpc)"
post "$AUDITOR" "" '{"query":"{ accessLog(first: 5, filter: {decision: \"deny\"}) { edges { node { seq at action decision reason purpose organisation { slug } } } } }"}'; echo
echo "== the auditor: everything about mariam, for purpose protection"
post "$AUDITOR" "" '{"query":"{ accessLog(first: 5, filter: {peacebuilderPseudonym: \"mariam\", purpose: \"protection\"}) { edges { node { seq action decision organisation { slug } details } } } }"}'; echo
echo "== mariam's own history"
HER=$($SN token --peacebuilder mariam)
post "$HER" "" '{"query":"{ accessHistory(first: 8) { edges { node { at organisation { name } purpose decision description } } } }"}'; echo
echo "== export with its checkpoint, verified offline"
EXPORT=$(mktemp)
curl -s "$BASE/audit/export?format=jsonl" -H "Authorization: Bearer $AUDITOR" -o "$EXPORT"
$SN audit verify-export "$EXPORT"
rm -f "$EXPORT"
echo "== the whole log"
$SN audit verify --no-progress
