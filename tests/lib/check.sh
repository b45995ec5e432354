# tern test fixtures: assertions for bash tests, in the spirit of check.h.
#
#   check "what" CMD...      runs CMD; prints "ok   what" or "FAIL what" and
#                            counts; the test goes on either way
#   refuses CMD...           true when CMD fails (its output is discarded)
#   check_eq "what" GOT WANT compares two strings, shows both on failure
#   check_done               prints "N checks, N failed"; returns 1 on failure
#   wait_for SECONDS CMD...  runs CMD every 0.1 s until it succeeds or the
#                            time is up (bounded); returns CMD's last status

check_count=0
check_failures=0

check() {
    local what=$1
    shift
    check_count=$((check_count + 1))
    if "$@"; then
        echo "ok   $what"
    else
        echo "FAIL $what"
        check_failures=$((check_failures + 1))
    fi
}

refuses() { ! "$@" >/dev/null 2>&1; }

check_eq() { # what got want
    check_count=$((check_count + 1))
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: got '$2', want '$3'"
        check_failures=$((check_failures + 1))
    fi
}

check_done() {
    echo "$check_count checks, $check_failures failed"
    [ "$check_failures" -eq 0 ] && [ "$check_count" -gt 0 ]
}

wait_for() { # seconds cmd...
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}
