# tern test fixtures: the set of crafted OCSP responses tests feed to the
# stapler (through tests/lib/fake_responder.py in `file` or `seq` mode).
#
#   crafted_make DIR LEAF OUTDIR
#       DIR is a pki_make directory, LEAF a leaf name ("ecdsa"). Writes, all
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
#         expired.der       good, thisUpdate -2 h, nextUpdate -1 h
#         future.der        good, thisUpdate +1 h, nextUpdate +2 h
#         no-next.der       good, no nextUpdate at all
#         trylater.der      responseStatus tryLater (no body)
#         unauthorized.der  responseStatus unauthorized
#         internal.der      responseStatus internalError
#         garbage.der       2 KiB of random bytes

_crafted_lib=$(dirname "${BASH_SOURCE[0]}")

crafted_make() { # dir leaf outdir
    local dir=$1 leaf=$2 out=$3 other=rsa
    [ "$leaf" = rsa ] && other=ecdsa
    mkdir -p "$out" || return 1
    local mk=(python3 "$_crafted_lib/make_response.py" --issuer "$dir/inter.pem")
    local me=(--cert "$dir/$leaf.pem")
    local deleg=(--signer "$dir/responder.pem" --signer-key "$dir/responder.key")
    "${mk[@]}" "${me[@]}" "${deleg[@]}" "$out/good.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -30 --next-update 7200 "$out/newer.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -3600 --next-update 1800 "$out/older.der" &&
    "${mk[@]}" "${me[@]}" --signer "$dir/inter.pem" --signer-key "$dir/inter.key" \
        "$out/ca-signed.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --status revoked "$out/revoked.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --status unknown "$out/unknown.der" &&
    "${mk[@]}" --cert "$dir/$other.pem" "${deleg[@]}" "$out/other.der" &&
    "${mk[@]}" "${me[@]}" --signer "$dir/rogue.pem" --signer-key "$dir/rogue.key" \
        "$out/rogue.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update -7200 --next-update -3600 \
        "$out/expired.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --this-update 3600 --next-update 7200 \
        "$out/future.der" &&
    "${mk[@]}" "${me[@]}" "${deleg[@]}" --next-update none "$out/no-next.der" &&
    "${mk[@]}" --error tryLater "$out/trylater.der" &&
    "${mk[@]}" --error unauthorized "$out/unauthorized.der" &&
    "${mk[@]}" --error internalError "$out/internal.der" &&
    head -c 2048 /dev/urandom >"$out/garbage.der"
}
