#!/usr/bin/env bash
# The attempts an independent review used to widen access to a woman's data, replayed with curl
# against a running demo server (`python3 dev.py run`): each must now be refused or wait for her.
# Prints every answer; exits non-zero if an expectation fails. (decision 0013)
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
SN=${SN:-.venv/bin/safety-net}
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
secret() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])" "$CREDS" "$1" "$2"; }
org() { gql "$1" "" '{ organisations(first: 50) { edges { node { id slug } } } }' \
  | python3 -c "import json,sys; d=json.load(sys.stdin); print(next(e['node']['id'] for e in d['data']['organisations']['edges'] if e['node']['slug'] == sys.argv[1]))" "$2"; }

AMANI=$($SN token --peacebuilder amani); MARIAM=$($SN token --peacebuilder mariam)
AMANI_ID=$(gql "$AMANI" "" '{ me { peacebuilder { id } } }' | jq_ 'd["data"]["me"]["peacebuilder"]["id"]')
MARIAM_ID=$(gql "$MARIAM" "" '{ me { peacebuilder { id } } }' | jq_ 'd["data"]["me"]["peacebuilder"]["id"]')
UNPC_FOCAL=$($SN token --org unpc --user focal); MOFA_FOCAL=$($SN token --org mofa --user focal)
FUND_FOCAL=$($SN token --org fund --user focal)
UNPC=$(org "$UNPC_FOCAL" unpc); WPN=$(org "$UNPC_FOCAL" wpn)
INTAKE='{"categories": ["CONTACT", "LOCATION_PRECISE"], "purposes": ["MEDIA", "PROTECTION"], "obtainedVia": "WRITTEN"}'
OPEN='mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } userErrors { message } } }'

step "1. a machine client on her case team records intake consent for contact, location, media"
SYS=$(curl -s -u "mofa-system:$(secret clients mofa-system)" -d grant_type=client_credentials "$BASE/oauth/token" | jq_ 'd["access_token"]')
R=$(gql "$SYS" protection "$OPEN" "{\"i\": {\"peacebuilderId\": \"$MARIAM_ID\", \"intakeConsent\": $INTAKE}}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["openCase"]["case"]')" None

step "1b. a case worker signed in with a password only does the same"
PWD_CW=$(curl -s "$BASE/auth/login" -H 'Content-Type: application/json' -d "{\"organisation\": \"mofa\", \"username\": \"caseworker\", \"password\": \"$(secret users mofa/caseworker)\"}" | jq_ 'd["access_token"]')
R=$(gql "$PWD_CW" protection "$OPEN" "{\"i\": {\"peacebuilderId\": \"$MARIAM_ID\", \"intakeConsent\": $INTAKE}}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["openCase"]["case"]')" None

step "2. her lead organisation records 'her' consent to itself for contact, location, identity"
R=$(gql "$UNPC_FOCAL" protection 'mutation($i: GrantConsentInput!) { grantConsent(input: $i) { grant { status awaiting } userErrors { message } } }' \
  "{\"i\": {\"peacebuilderId\": \"$AMANI_ID\", \"recipientOrganisationId\": \"$UNPC\", \"categories\": [\"CONTACT\", \"LOCATION_PRECISE\", \"IDENTITY\"], \"purposes\": [\"PROTECTION\"], \"obtainedVia\": \"IN_PERSON\"}}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["grantConsent"]["grant"]["status"]')" PENDING
R=$(gql "$UNPC_FOCAL" protection 'query($id: ID!) { peacebuilder(id: $id) { profile { phone } } }' "{\"id\": \"$AMANI_ID\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["peacebuilder"]["profile"]["phone"]')" None

step "3. a group member reads her record with the aggregate_reporting purpose"
R=$(gql "$MOFA_FOCAL" aggregate_reporting 'query($id: ID!) { peacebuilder(id: $id) { pseudonym } }' "{\"id\": \"$AMANI_ID\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["errors"][0]["extensions"]["code"]')" NOT_FOUND

step "4. an organisation without a grant of its own erases her; her lead cannot alone"
ERASE='mutation($id: ID, $r: String) { eraseMyData(peacebuilderId: $id, reason: $r) { erased erasure { status } userErrors { message } } }'
R=$(gql "$MOFA_FOCAL" protection "$ERASE" "{\"id\": \"$AMANI_ID\", \"r\": \"A retention rule says her file must go now.\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["errors"][0]["extensions"]["code"]')" NOT_FOUND
R=$(gql "$UNPC_FOCAL" protection "$ERASE" "{\"id\": \"$AMANI_ID\", \"r\": \"A retention rule says her file must go now.\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["eraseMyData"]["erasure"]["status"]')" AWAITING_CONFIRMATION

step "6. break-glass by an organisation with no relation to her"
R=$(gql "$FUND_FOCAL" emergency_response 'mutation($id: ID!) { openBreakGlass(input: {peacebuilderId: $id, reason: "We heard she is in danger tonight, open it.", hours: 72}) { breakGlass { id } } }' "{\"id\": \"$AMANI_ID\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["errors"][0]["extensions"]["code"]')" NOT_FOUND

step "6b. a group member lists her grants: only those naming it"
R=$(gql "$MOFA_FOCAL" protection 'query($id: ID!) { consentGrants(peacebuilderId: $id) { recipientType } }' "{\"id\": \"$AMANI_ID\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'sorted({g["recipientType"] for g in d["data"]["consentGrants"]})')" "['WORKING_GROUP']"

step "6c. her approval of a public statement by her network, used by another organisation"
A=$(gql "$AMANI" "" 'mutation($o: ID!) { recordApproval(input: {act: public_statement, description: "A statement of solidarity, no names.", organisationId: $o}) { approval { id } } }' "{\"o\": \"$WPN\"}" | jq_ 'd["data"]["recordApproval"]["approval"]["id"]')
CASE=$(gql "$UNPC_FOCAL" protection '{ cases(first: 5) { edges { node { id peacebuilder { pseudonym } } } } }' \
  | python3 -c "import json,sys; d=json.load(sys.stdin); print(next(e['node']['id'] for e in d['data']['cases']['edges'] if e['node']['peacebuilder']['pseudonym'] == 'amani'))")
R=$(gql "$UNPC_FOCAL" protection 'mutation($c: ID!, $a: ID) { addMeasure(input: {caseId: $c, kind: PUBLIC_STATEMENT, approvalId: $a}) { measure { id } userErrors { field message } } }' "{\"c\": \"$CASE\", \"a\": \"$A\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["addMeasure"]["measure"]')" None

echo; echo "every attempt refused or waiting for her"
