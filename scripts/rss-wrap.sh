#!/bin/sh
# A runner prefix (DEVAUTH_TEST_RUNNER) for the end-to-end tests that records the peak resident
# set size of every devauth run, for scripts/budget.sh: appends "<KiB> <subcommand>" to LOG per
# run (GNU time's %M; time also writes "Command exited with non-zero status N" lines there).
#
# usage: rss-wrap.sh LOG [RUNNER...] DEVAUTH [ARGS...]
#   e.g. DEVAUTH_TEST_RUNNER="scripts/rss-wrap.sh /tmp/rss.log", or to measure under qemu-user
#        DEVAUTH_TEST_RUNNER="scripts/rss-wrap.sh /tmp/rss.log qemu-arm -L /usr/arm-linux-gnueabihf"
# The log is an argument rather than a variable so that tests which clear the environment of the
# process they start still work. Exit status, stdin/stdout/stderr are the program's.
log=$1
shift
cmd=other
for a in "$@"; do
  case $a in
    pair | token | status | unpair | run)
      cmd=$a
      break
      ;;
  esac
done

# Not `exec time`: a test that signals "the devauth process" (e.g. SIGTERM to `devauth run`) would
# hit time, which does not pass signals on. So time runs as our child and we forward the signal to
# its child. Stdin goes through fd 3: sh points a background job's fd 0 at /dev/null.
exec 3<&0
/usr/bin/time -a -o "$log" -f "%M $cmd" "$@" <&3 3<&- &
timer=$!
# shellcheck disable=SC2317 # called from the traps
forward() {
  # the children file is "PID " without a newline, which `read` would report as a failure
  child=$(cat "/proc/$timer/task/$timer/children" 2>/dev/null)
  # shellcheck disable=SC2086 # unquoted: drops the trailing space
  [ -z "$child" ] || kill -s "$1" $child
}
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP
trap 'forward USR1' USR1
# `wait` returns early when a trapped signal arrives: wait again until time has really exited.
while :; do
  wait "$timer"
  rc=$?
  kill -0 "$timer" 2>/dev/null || break
done
exit "$rc"
