# tern test fixtures: the set of crafted OCSP responses tests feed to the
# stapler (through tests/lib/fake_responder.py in `file` or `seq` mode).
#
#   crafted_make DIR LEAF OUTDIR [NAME...]
#       DIR is a pki_make directory, LEAF a leaf name ("ecdsa", or
#       "leaves/3" for a pki_make_leaves leaf). Writes the NAMEs given (all
#       of them by default), all
#       for LEAF unless said otherwise, signed by the delegated responder
#       unless said otherwise:
#         good.der          good, thisUpdate -60 s, nextUpdate +1 h
#         newer.der         good, thisUpdate -30 s, nextUpdate +2 h
#         older.der         good, thisUpdate -1 h,  nextUpdate +30 min
#                           (older than good.der, still valid)
#         ca-signed.der     good, signed by the intermediate itself
#         revoked.der       revoked (keyCompromise)
#         unknown.der       unknown
#         other.der         good, but for the "rsa" leaf (or "ecdsa" if LEAF is rsa)
#         rogue.der         good, signed by an unrelated self-signed CA (rogue.pem)
#         noeku.der         good, signed by a certificate of the issuer that
#                           lacks OCSPSigning (noeku.pem; included)
#         wrongca.der       good, signed by an OCSPSigning certificate of the
#                           root, not of the issuer (wrongca.pem; included)
#         expired.der       good, thisUpdate -2 h, nextUpdate -1 h
#         future.der        good, thisUpdate +1 h, nextUpdate +2 h
#         no-next.der       good, no nextUpdate at all
#         trylater.der      responseStatus tryLater (no body)
#         unauthorized.der  responseStatus unauthorized
#         internal.der      responseStatus internalError
#         garbage.der       2 KiB of random bytes

_crafted_lib=$(dirname "${BASH_SOURCE[0]}")

CRAFTED_ALL="good newer older ca-signed revoked unknown other rogue noeku wrongca expired
    future no-next trylater unauthorized internal garbage"

crafted_make() { # dir leaf outdir [names...]
    local dir=$1 leaf=$2 out=$3 other=rsa what
    shift 3
    [ "$leaf" = rsa ] && other=ecdsa
    mkdir -p "$out" || return 1
    local mk=(python3 "$_crafted_lib/make_response.py" --issuer "$dir/inter.pem")
    local me=(--cert "$dir/$leaf.pem")
    local deleg=(--signer "$dir/responder.pem" --signer-key "$dir/responder.key")
    for what in ${@:-$CRAFTED_ALL}; do
        case $what in
        good) "${mk[@]}" "${me[@]}" "${deleg[@]}" "$out/good.der" ;;
        newer) "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -30 --next-update 7200 \
            "$out/newer.der" ;;
        older) "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -3600 --next-update 1800 \
            "$out/older.der" ;;
        ca-signed) "${mk[@]}" "${me[@]}" --signer "$dir/inter.pem" --signer-key "$dir/inter.key" \
            "$out/ca-signed.der" ;;
        revoked) "${mk[@]}" "${me[@]}" "${deleg[@]}" --status revoked "$out/revoked.der" ;;
        unknown) "${mk[@]}" "${me[@]}" "${deleg[@]}" --status unknown "$out/unknown.der" ;;
        other) "${mk[@]}" --cert "$dir/$other.pem" "${deleg[@]}" "$out/other.der" ;;
        rogue) "${mk[@]}" "${me[@]}" --signer "$dir/rogue.pem" --signer-key "$dir/rogue.key" \
            "$out/rogue.der" ;;
        noeku) "${mk[@]}" "${me[@]}" --signer "$dir/noeku.pem" --signer-key "$dir/noeku.key" \
            "$out/noeku.der" ;;
        wrongca) "${mk[@]}" "${me[@]}" --signer "$dir/wrongca.pem" --signer-key "$dir/wrongca.key" \
            "$out/wrongca.der" ;;
        expired) "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -7200 --next-update -3600 \
            "$out/expired.der" ;;
        future) "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update 3600 --next-update 7200 \
            "$out/future.der" ;;
        no-next) "${mk[@]}" "${me[@]}" "${deleg[@]}" --next-update none "$out/no-next.der" ;;
        trylater) "${mk[@]}" --error tryLater "$out/trylater.der" ;;
        unauthorized) "${mk[@]}" --error unauthorized "$out/unauthorized.der" ;;
        internal) "${mk[@]}" --error internalError "$out/internal.der" ;;
        garbage) head -c 2048 /dev/urandom >"$out/garbage.der" ;;
        *) echo "crafted.sh: no response named $what" >&2; false ;;
        esac || return 1
    done
}
