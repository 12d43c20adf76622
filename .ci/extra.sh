# shellcheck shell=bash
# Sourced by .ci/run after the tests (set -euo pipefail, step()).

step "actionlint: the example workflows, with the actions they use checked"
# actionlint resolves `uses: ./…` (and checks the inputs given against the
# action.yml) only inside a project, a directory with .github/workflows. The
# examples live in docs/workflows, so that they never run on this repository:
# lint them as the workflows of a scratch project whose action.yml and
# actions/ are this repository's.
lint_dir=$(mktemp -d)
mkdir -p "$lint_dir/.github/workflows"
git -C "$lint_dir" init -q
ln -s "$PWD/action.yml" "$PWD/actions" "$lint_dir/"
lint_files=$(git ls-files 'docs/workflows/*.yml' 'docs/workflows/*.yaml' '.github/workflows/*.yml' '.github/workflows/*.yaml')
[ -n "$lint_files" ] || { echo "no example workflow found"; exit 1; }
for f in $lint_files; do
  cp "$f" "$lint_dir/.github/workflows/$(echo "$f" | tr / _)"
done
(cd "$lint_dir" && actionlint -no-color -shellcheck shellcheck) | sed 's|^\.github/workflows/||'
echo "actionlint: $(echo "$lint_files" | wc -w) workflows clean:" $lint_files

# The check is live: an input the action does not declare must be caught.
cat >"$lint_dir/.github/workflows/negative.yml" <<'YML'
on: workflow_dispatch
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: ./
        with: {no-such-input: x}
      - uses: ./actions/setup
        with: {no-such-setup-input: x}
YML
if neg=$(cd "$lint_dir" && actionlint -no-color .github/workflows/negative.yml 2>&1); then
  echo "actionlint accepted undeclared inputs: local actions are not being checked"; exit 1
fi
grep -q 'input "no-such-input" is not defined in action' <<<"$neg"
grep -q 'input "no-such-setup-input" is not defined in action' <<<"$neg"
echo "actionlint rejects undeclared inputs of ./ and ./actions/setup (as it should)"
rm -rf "$lint_dir"

step "shellcheck: the action's scripts"
shellcheck -x -P SCRIPTDIR actions/*/*.sh
echo "shellcheck: $(ls actions/*/*.sh | wc -l) scripts clean"
