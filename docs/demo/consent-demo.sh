#!/usr/bin/env bash
# Walk through the foundation and consent with curl against a running demo server
# (`python3 dev.py run`). Prints each step; exits non-zero if an expectation fails.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
SN=${SN:-.venv/bin/safety-net}
# Written by `safety-net demo` (`python3 dev.py run`) in the data directory; never committed.
CREDS=${CREDS:-${SAFETY_NET_DATA_DIR:-var}/demo-credentials.json}

gql() {  # gql TOKEN PURPOSE QUERY [VARIABLES_JSON]
  local token=$1 purpose=$2 query=$3 vars=${4:-null}
  local body; body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$query" "$vars")
  curl -s "$BASE/graphql" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${purpose:+-H "Safety-Net-Purpose: $purpose"} -d "$body"
}
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
step() { printf '\n== %s\n' "$*"; }
expect() { if [ "$1" != "$2" ]; then echo "EXPECTED [$2] GOT [$1]"; exit 1; fi; echo "ok: $1"; }

step "unauthenticated request"
curl -s -o /dev/null -w '%{http_code} %header{www-authenticate}\n' "$BASE/graphql" \
  -H 'Content-Type: application/json' -d '{"query":"{ viewer { name } }"}'

MOFA_CW=$($SN token --org mofa --user caseworker)
EMB_CW=$($SN token --org embassy --user caseworker)

step "mofa case worker registers a peacebuilder: her intake consent is PENDING until confirmed"
REG=$(gql "$MOFA_CW" protection 'mutation($i: CreatePeacebuilderInput!) { createPeacebuilder(input: $i) { peacebuilder { id } intakeConsent { id status awaiting } userErrors { message } } }' \
  "{\"i\": {\"pseudonym\": \"demo-$RANDOM$RANDOM\", \"profile\": {\"country\": \"KE\"}, \"intakeConsent\": {\"obtainedVia\": \"IN_PERSON\", \"evidence\": {\"kind\": \"SIGNED_FORM\", \"reference\": \"intake form in the case file\"}}}}")
echo "$REG"
PB=$(echo "$REG" | jq_ 'd["data"]["createPeacebuilder"]["peacebuilder"]["id"]')
INTAKE=$(echo "$REG" | jq_ 'd["data"]["createPeacebuilder"]["intakeConsent"]["id"]')
expect "$(echo "$REG" | jq_ 'd["data"]["createPeacebuilder"]["intakeConsent"]["status"]')" PENDING
step "a second focal point of mofa confirms it against the evidence (two-person rule)"
MOFA_FOCAL=$($SN token --org mofa --user focal)
CONF=$(gql "$MOFA_FOCAL" "" '{ confirmations(first: 50) { edges { node { id targetId action } } } }' \
  | python3 -c "import json,sys; d=json.load(sys.stdin); print(next(e['node']['id'] for e in d['data']['confirmations']['edges'] if e['node']['targetId'] == sys.argv[1]))" "$INTAKE")
R=$(gql "$MOFA_FOCAL" "" 'mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) { confirmation { status } userErrors { message } } }' "{\"id\": \"$CONF\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["confirmTwoPerson"]["confirmation"]["status"]')" CONFIRMED
CASE=$(gql "$MOFA_CW" protection 'mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id status } userErrors { message } } }' \
  "{\"i\": {\"peacebuilderId\": \"$PB\", \"summary\": \"Threats after a peace forum.\"}}" \
  | jq_ 'd["data"]["openCase"]["case"]["id"]')
echo "case $CASE"
step "mofa lists its cases"
gql "$MOFA_CW" protection '{ cases(first: 10) { totalCount edges { node { id status leadOrganisation { slug } } } } }'; echo
step "embassy lists cases (sees none of mofa's) and asks for mofa's case by ID and for a random ID"
gql "$EMB_CW" protection '{ cases(first: 10) { totalCount } }'; echo
A=$(gql "$EMB_CW" protection 'query($id: ID!) { case(id: $id) { id } }' "{\"id\": \"$CASE\"}")
RANDOM_ID=$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(f"Case:{uuid.uuid4()}".encode()).decode().rstrip("="))')
B=$(gql "$EMB_CW" protection 'query($id: ID!) { case(id: $id) { id } }' "{\"id\": \"$RANDOM_ID\"}")
echo "foreign: $A"; echo "random:  $B"; expect "$([ "$A" = "$B" ] && echo identical || echo different)" identical

step "client credentials"
SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"]["mofa-system"])' "$CREDS")
curl -s -u "mofa-system:$SECRET" -d grant_type=client_credentials "$BASE/oauth/token" | jq_ 'sorted(d)'

step "mariam grants the UN protection cluster her incident details for protection"
HER=$($SN token --peacebuilder mariam)
UNPC=$(gql "$HER" "" '{ organisations(kind: UN_PROTECTION_CLUSTER) { edges { node { id } } } }' | jq_ 'd["data"]["organisations"]["edges"][0]["node"]["id"]')
# Runnable again after an interrupted run: a grant to the cluster still live from it is
# revoked first (a second identical grant would be refused).
for G in $(gql "$HER" "" '{ me { consentGrants { id status recipientOrganisation { slug } } } }' \
    | jq_ '" ".join(g["id"] for g in d["data"]["me"]["consentGrants"] if g["status"] in ("LIVE", "PENDING", "NOT_YET_VALID") and (g["recipientOrganisation"] or {}).get("slug") == "unpc")'); do
  gql "$HER" "" 'mutation($g: ID!) { revokeConsent(input: {grantId: $g}) { grant { status } } }' "{\"g\": \"$G\"}" >/dev/null
done
GRANT=$(gql "$HER" "" 'mutation($o: ID!) { grantConsent(input: {recipientOrganisationId: $o, categories: [INCIDENT_DETAILS], purposes: [PROTECTION]}) { grant { id status } userErrors { message } } }' "{\"o\": \"$UNPC\"}")
echo "$GRANT"; GRANT_ID=$(echo "$GRANT" | jq_ 'd["data"]["grantConsent"]["grant"]["id"]')
MARIAM=$(gql "$HER" "" '{ me { peacebuilder { id } } }' | jq_ 'd["data"]["me"]["peacebuilder"]["id"]')
READ='query($id: ID!) { peacebuilder(id: $id) { pseudonym profile { legalName } cases { summary leadOrganisation { slug } } } }'
UNPC_FOCAL=$($SN token --org unpc --user focal)
EMB_FOCAL=$($SN token --org embassy --user focal)
step "the cluster's focal point reads (purpose protection)"
R=$(gql "$UNPC_FOCAL" protection "$READ" "{\"id\": \"$MARIAM\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["peacebuilder"]["cases"][0]["summary"] is not None')" True
step "the embassy's focal point cannot"
R=$(gql "$EMB_FOCAL" protection "$READ" "{\"id\": \"$MARIAM\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["peacebuilder"]')" None
step "she revokes; the cluster's next read is denied"
gql "$HER" "" 'mutation($g: ID!) { revokeConsent(input: {grantId: $g}) { grant { status revokedAt } } }' "{\"g\": \"$GRANT_ID\"}"; echo
R=$(gql "$UNPC_FOCAL" protection "$READ" "{\"id\": \"$MARIAM\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["errors"][0]["extensions"]["code"]')" NOT_FOUND
echo; echo "demo finished"
