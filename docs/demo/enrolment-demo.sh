#!/usr/bin/env bash
# Enrolling a second factor against a running demo server (`python3 dev.py run`): a password
# alone enrols nobody; two people issue a one-time code, the second is shown it once and hands it
# over; the operator's console issues the very first ones. Exits non-zero if an expectation fails.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
SN=${SN:-.venv/bin/safety-net}
PY=${PY:-.venv/bin/python}

gql() {  # gql TOKEN QUERY [VARIABLES_JSON]
  local token=$1 query=$2 vars=${3:-null}
  local body; body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$query" "$vars")
  curl -s "$BASE/graphql" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body"
}
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
step() { printf '\n== %s\n' "$*"; }
expect() { if [ "$1" != "$2" ]; then echo "EXPECTED [$2] GOT [$1]"; exit 1; fi; echo "ok: $1"; }
login() {  # login ORG USER PASSWORD [TOTP]
  python3 -c 'import json,sys; b={"organisation": sys.argv[1], "username": sys.argv[2], "password": sys.argv[3]}
if len(sys.argv) > 4: b["totp"] = sys.argv[4]
print(json.dumps(b))' "$@" | curl -s "$BASE/auth/login" -H 'Content-Type: application/json' -d @-
}
totp() { "$PY" -c 'import sys,time; from app.auth import totp; print(totp.code_at(sys.argv[1], totp.step_of(time.time()) + int(sys.argv[2])))' "$1" "${2:-0}"; }
START='mutation($c: String) { startTotpEnrolment(input: {enrolmentCode: $c}) { secret userErrors { message } } }'
CONFIRM='mutation($c: String!) { confirmTotpEnrolment(input: {code: $c}) { enrolled userErrors { message } } }'

# Operator tokens (`safety-net token`) count as signed in with a second factor.
ADMIN=$($SN token --org embassy --user admin)
FOCAL=$($SN token --org embassy --user focal)

step "the embassy's admin creates a focal point (and is shown her initial password)"
NAME="focal-$RANDOM$RANDOM"
CREATED=$(gql "$ADMIN" 'mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } initialPassword userErrors { message } } }' \
  "{\"i\": {\"username\": \"$NAME\", \"displayName\": \"New focal point\", \"roles\": [\"FOCAL_POINT\"]}}")
USER_ID=$(echo "$CREATED" | jq_ 'd["data"]["createUser"]["user"]["id"]')
PASSWORD=$(echo "$CREATED" | jq_ 'd["data"]["createUser"]["initialPassword"]')

step "with the password alone she (or the admin who knows it) signs in but cannot enrol"
PENDING=$(login embassy "$NAME" "$PASSWORD" | jq_ 'd["access_token"]')
R=$(gql "$PENDING" "$START"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["startTotpEnrolment"]["secret"]')" None

step "the admin asks for her enrolment code; the admin alone cannot confirm it"
ASKED=$(gql "$ADMIN" 'mutation($u: ID!) { requestEnrolmentCode(input: {userId: $u}) { confirmation { id status } userErrors { message } } }' "{\"u\": \"$USER_ID\"}")
echo "$ASKED"; REQ=$(echo "$ASKED" | jq_ 'd["data"]["requestEnrolmentCode"]["confirmation"]["id"]')
TWO='mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) { confirmation { status } userErrors { message } } }'
R=$(gql "$ADMIN" "$TWO" "{\"id\": \"$REQ\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["errors"][0]["extensions"]["code"]')" FORBIDDEN

step "a focal point confirms, and is shown the code once (she hands it over in person)"
gql "$FOCAL" "$TWO" "{\"id\": \"$REQ\"}"; echo
CLAIM='mutation($id: ID!) { claimEnrolmentCode(input: {confirmationId: $id}) { code expiresAt userErrors { message } } }'
CODE=$(gql "$FOCAL" "$CLAIM" "{\"id\": \"$REQ\"}" | jq_ 'd["data"]["claimEnrolmentCode"]["code"]')
echo "code: ${CODE:0:5}-…  (shown once)"
R=$(gql "$FOCAL" "$CLAIM" "{\"id\": \"$REQ\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["claimEnrolmentCode"]["code"]')" None

step "she enrols with her password-only token and the code, then signs in with TOTP"
SECRET=$(gql "$PENDING" "$START" "{\"c\": \"$CODE\"}" | jq_ 'd["data"]["startTotpEnrolment"]["secret"]')
R=$(gql "$PENDING" "$CONFIRM" "{\"c\": \"$(totp "$SECRET")\"}"); echo "$R"
expect "$(echo "$R" | jq_ 'd["data"]["confirmTotpEnrolment"]["enrolled"]')" True
R=$(login embassy "$NAME" "$PASSWORD" "$(totp "$SECRET" 1)")
expect "$(echo "$R" | jq_ '"access_token" in d and "mfa_enrolment_required" not in d')" True

step "the same code does not work twice (after a reset, two people issue a new one)"
R=$(gql "$PENDING" "$START" "{\"c\": \"$CODE\"}")
expect "$(echo "$R" | jq_ '"errors" in d or d["data"]["startTotpEnrolment"]["secret"] is None')" True

step "bootstrap: the operator's console issues a code for a demo person (shown once, logged by ID)"
$SN users enrolment-code --org wpn --user focal2 | sed -E 's/(by email\): [0-9A-Z]{5})[-0-9A-Z]+/\1-…/' \
  || echo "(wpn/focal2 has enrolled already: --reset-factor replaces a lost factor)"
echo "demo passwords are in ${SAFETY_NET_DATA_DIR:-var}/demo-credentials.json: sign in as wpn/focal2 and enrol with it"
