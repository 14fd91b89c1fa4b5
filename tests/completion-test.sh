#!/usr/bin/env bash
# The generated completion scripts: bash sources them without a word on stderr and completes
# commands, options and their values; zsh (when installed) parses them and completes the same;
# `cmake --install` puts both where bash-completion and zsh look.
# Usage: tests/completion-test.sh XRING_BINARY BUILD_DIR
set -u
xring=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$xring" completion bash > "$work/xring.bash" || fail "xring completion bash exited $?"
bash --norc --noprofile -c "source '$work/xring.bash'" 2> "$work/stderr" || fail "sourcing failed"
[[ -s $work/stderr ]] && fail "sourcing wrote to stderr: $(cat "$work/stderr")"

# expect "WORDS..." "COMPLETIONS": the candidates bash offers for the last word.
expect_bash() {
  local got
  got=$(bash --norc --noprofile -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    _xring; echo "${COMPREPLY[*]}"' completion "$work/xring.bash" $1)
  [[ $got == "$2" ]] || fail "bash: [$1] completed to [$got], expected [$2]"
}
expect_bash "xring pl" "plan"
expect_bash "xring plan --mo" "--model"
expect_bash "xring plan --model ti" "tiny"
expect_bash "xring --verbose plan --cluster a100-8" "a100-80gb-16"
expect_bash "xring run --backend cu" "cuda"
expect_bash "xring heads s" "synth"
expect_bash "xring help exi" "exit-codes"
expect_bash "xring completion z" "zsh"
expect_bash "xring --qu" "--quiet"
expect_bash "xring whatif --vary workload.frames=1,2 --pl" "--plot"

if command -v zsh > /dev/null; then
  "$xring" completion zsh > "$work/_xring" || fail "xring completion zsh exited $?"
  zsh -n "$work/_xring" || fail "zsh cannot parse the script"
  # Outside a completion widget: compadd, _files and _describe print what they were given.
  expect_zsh() {
    local got
    got=$(zsh -f -c '
      compadd() { while [[ $# -gt 0 && $1 != -- ]]; do shift; done; shift; print -r -- "$*"; }
      _files() { print -r -- FILES; }
      _describe() { local name=$4; print -r -- "${(j: :)${(@)${(P)name}%%:*}}"; }
      compdef() { : }
      source "$1"; shift
      words=("$@"); CURRENT=$#; _xring' completion "$work/_xring" $1)
    [[ $got == "$2" ]] || fail "zsh: [$1] completed to [$got], expected [$2]"
  }
  expect_zsh "xring heads x" "synth build"
  expect_zsh "xring run --backend x" "cpu cuda nccl"
  expect_zsh "xring run x" "FILES"
  expect_zsh "xring --quiet completion x" "bash zsh"
else
  echo "zsh not installed: its script is not parsed here"
fi

# Installed where the shells look.
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" || fail "cmake --install"
cmp -s "$work/xring.bash" "$work/prefix/share/bash-completion/completions/xring" ||
  fail "share/bash-completion/completions/xring is not xring completion bash's script"
[[ -s $work/prefix/share/zsh/site-functions/_xring ]] || fail "share/zsh/site-functions/_xring"
[[ -x $work/prefix/bin/xring ]] || fail "bin/xring"

if ((failures)); then exit 1; fi
echo "completion: ok"
