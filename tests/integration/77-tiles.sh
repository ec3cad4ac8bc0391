# The log as C2SP tlog-tiles, read by a client written from the
# specifications alone (tests/tools/tiles_reader.py, no code shared with
# the gateway): a log of thousands of entries served under /log/ gives the
# signed checkpoint's root; `signgate log mirror` copies it, checked, to a
# directory that python's plain static server publishes, which gives the
# same root; the mirror follows the log as it grows; `verify --log`
# accepts a signature against the gateway, the mirror and its directory;
# a changed byte in a mirrored tile or bundle is caught by both readers.
. "$(dirname "$0")/lib.sh"

READER="$SG_ROOT/tests/tools/tiles_reader.py"
FILL="$BUILD/tools/log_fill"
[ -x "$FILL" ] || { not_ok "log_fill is built (make unit)"; finish; exit 1; }
N=3000

# reader SOURCE: prints "SIZE ROOT" or "fail"; stderr in $T_DIR/reader.err.
reader() {
	timeout 60 python3 "$READER" "$1" "$VKEY" --cacert "$DEV/tls/ca.pem" \
	    2>"$T_DIR/reader.err" || echo fail
}
# cp_of SOURCE_FILE: "SIZE ROOT" of a checkpoint note.
cp_of() { sed -n '2p;3p' "$1" | paste -sd' '; }
# header URL NAME: the value of one response header.
header() {
	curl -sS --max-time 30 --cacert "$DEV/tls/ca.pem" -o /dev/null -D - \
	    "$1" | tr -d '\r' | sed -n "s/^$2: //Ip"
}
flip_byte() {
	local f=$1 pos=$2 b
	b=$(od -An -tu1 -j "$pos" -N1 "$f" | tr -d ' \n')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
	    dd of="$f" bs=1 seek="$pos" conv=notrunc status=none
}

# --- a log of N entries, made before the gateway starts -----------------
write_config
"$FILL" "$T_DIR/state" "$N" >/dev/null || { not_ok "log_fill"; finish; exit 1; }
give_to_front "$T_DIR/state"
start_daemon || { not_ok "daemon starts"; finish; exit 1; }
as ci
expect_rc "log key" 0 log key
VKEY=$(cat "$T_DIR/out")

mkdir -p "$T_DIR/work"
head -c 4096 /dev/urandom >"$T_DIR/work/a.bin"
expect_rc "sign nightly" 0 sign --key nightly "$T_DIR/work/a.bin"
curl -sS --cacert "$DEV/tls/ca.pem" -o "$T_DIR/cp1" "$URL/log/checkpoint"
SIZE1=$(sed -n 2p "$T_DIR/cp1")
check "the log holds the filled entries and the signature's" \
    test "$SIZE1" -gt "$N"

# --- the gateway's tiles ------------------------------------------------
expect_eq "the independent reader gets the checkpoint's root from the gateway" \
    "$(reader "$URL/log")" "$(cp_of "$T_DIR/cp1")"
FULL=$(header "$URL/log/tile/0/000" Cache-Control)
expect_eq "a full tile is cacheable for ever" "$FULL" \
    "public, max-age=31536000, immutable"
W0=$((SIZE1 % 256)); T0=$((SIZE1 / 256))
PART="$URL/log/tile/0/$(printf '%03d' "$T0").p/$W0"
expect_eq "a partial tile is revalidated" "$(header "$PART" Cache-Control)" \
    "no-cache"
expect_eq "the checkpoint is revalidated" \
    "$(header "$URL/log/checkpoint" Cache-Control)" "no-cache"
expect_eq "a tile past the checkpoint is 404" \
    "$(api - GET "/log/tile/0/$(printf '%03d' "$T0").p/$((W0 + 1))")" 404
expect_eq "a non-canonical tile path is 404" \
    "$(api - GET "/log/tile/0/x000/000")" 404
curl -sS --cacert "$DEV/tls/ca.pem" -o "$T_DIR/bundle" "$URL/log/tile/entries/000"
# The bundle's entries 0 to 3, each after its big-endian 16-bit length.
pos=0
for i in 0 1 2 3; do
	n=$(od -An -tu1 -j "$pos" -N2 "$T_DIR/bundle" | awk '{ print $1 * 256 + $2 }')
	tail -c +$((pos + 3)) "$T_DIR/bundle" | head -c "$n" >"$T_DIR/bentry$i"
	pos=$((pos + 2 + n))
done
for i in 0 3; do
	curl -sS --cacert "$DEV/tls/ca.pem" -o "$T_DIR/entry$i" "$URL/v1/log/entries/$i"
	check "entry $i of bundle 0 is /v1/log/entries/$i, behind its length" \
	    cmp -s "$T_DIR/entry$i" "$T_DIR/bentry$i"
done
check "entry 3 is longer than 255 bytes (both bytes of its length)" \
    test "$(wc -c <"$T_DIR/entry3")" -gt 255

# --- a mirror, served by a plain static server ---------------------------
M="$T_DIR/mirror"
expect_rc "log mirror (first run, key trusted on first use)" 0 log mirror "$M"
check "the mirror pinned the log key" grep -qxF "$VKEY" "$M/signgate-mirror.vkey"
expect_eq "the mirror's checkpoint is the gateway's" \
    "$(cp_of "$M/checkpoint")" "$(cp_of "$T_DIR/cp1")"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$M" \
    >"$T_DIR/http.out" 2>"$T_DIR/http.err" &
BG_PIDS+=($!)
HPORT=
for _ in $(seq 1 1000); do
	HPORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$T_DIR/http.out")
	[ -n "$HPORT" ] && break
	pause 0.01
done
check "python3 -m http.server serves the mirror" test -n "$HPORT"
MURL="http://127.0.0.1:$HPORT"
expect_eq "the independent reader gets the same root from the mirror" \
    "$(reader "$MURL")" "$(cp_of "$T_DIR/cp1")"

# --- verify --log against the gateway, the mirror and its directory ------
V=(verify --log-key "$VKEY" --policy "$DEV/policy.conf" \
    --proof "$T_DIR/work/a.bin.sig.proof" --signature "$T_DIR/work/a.bin.sig" \
    "$T_DIR/work/a.bin")
expect_rc "verify --log the gateway" 0 "${V[@]}" --log "$URL/log"
# The proof carries the policy's entries beside the signature's: several.
check "... says the source holds the same entries, last" bash -c \
    "tail -n 1 '$T_DIR/out' | grep -q '^log source: .* consistent with the proof.s checkpoint, the same entries\$'"
expect_rc "verify --log the mirror over http" 0 "${V[@]}" --log "$MURL"
expect_rc "verify --log the mirror's directory" 0 "${V[@]}" --log "$M"

# --- the log grows; the mirror follows, consistently ----------------------
head -c 4096 /dev/urandom >"$T_DIR/work/b.bin"
expect_rc "sign nightly again" 0 sign --key nightly "$T_DIR/work/b.bin"
expect_rc "log mirror (second run)" 0 log mirror "$M"
check "... wrote only what changed" \
    grep -q "was $SIZE1; [0-9] files written" "$T_DIR/out"
curl -sS --cacert "$DEV/tls/ca.pem" -o "$T_DIR/cp2" "$URL/log/checkpoint"
expect_eq "the mirror's checkpoint is the grown log's" \
    "$(cp_of "$M/checkpoint")" "$(cp_of "$T_DIR/cp2")"
expect_rc "the old proof still verifies against the grown mirror" 0 \
    "${V[@]}" --log "$M"
expect_rc "log mirror with another --vkey: KEY CHANGED" 5 log mirror "$M" \
    --vkey "other+00000000+AbZvBP2ZNmCuBEwIHSrH4hv7YGLGj4dJjMzXTpoFUNiR"
check "... refused and said so" grep -q 'KEY CHANGED' "$T_DIR/err"

# --- --follow keeps the mirror current until killed -------------------------
timeout 60 "$SIGNGATE" log mirror "$M" --follow --interval 1 \
    >"$T_DIR/follow.out" 2>"$T_DIR/follow.err" </dev/null &
FOLLOW=$!
BG_PIDS+=($FOLLOW)
head -c 4096 /dev/urandom >"$T_DIR/work/c.bin"
expect_rc "sign nightly a third time" 0 sign --key nightly "$T_DIR/work/c.bin"
curl -sS --cacert "$DEV/tls/ca.pem" -o "$T_DIR/cp3" "$URL/log/checkpoint"
for _ in $(seq 1 1500); do
	[ "$(cp_of "$M/checkpoint")" = "$(cp_of "$T_DIR/cp3")" ] && break
	pause 0.01
done
expect_eq "mirror --follow picked up the new checkpoint" \
    "$(cp_of "$M/checkpoint")" "$(cp_of "$T_DIR/cp3")"
check "... and is still running" kill -0 "$FOLLOW"
kill -TERM "$FOLLOW" 2>/dev/null; wait "$FOLLOW" 2>/dev/null
expect_eq "the reader gets that root from the mirror" \
    "$(reader "$MURL")" "$(cp_of "$T_DIR/cp3")"
cp "$T_DIR/cp3" "$T_DIR/cp2"

# --- a changed byte anywhere is caught -------------------------------------
cp -a "$M" "$T_DIR/bad"
flip_byte "$T_DIR/bad/tile/0/000" 100
expect_eq "the reader refuses a changed full tile" \
    "$(reader "$T_DIR/bad")" fail
check "... naming it" grep -q 'tile/0/000' "$T_DIR/reader.err"
rm -rf "$T_DIR/bad"; cp -a "$M" "$T_DIR/bad"
IDX=$(sed -n 's/^index \([0-9]*\)$/\1/p' "$T_DIR/work/a.bin.sig.proof" | head -n 1)
SIZE2=$(sed -n 2p "$T_DIR/cp2")
check "the signature's entry is in the partial bundle" \
    test "$((IDX / 256))" -eq "$((SIZE2 / 256))"
B=$(printf '%03d' $((SIZE2 / 256))).p/$((SIZE2 % 256))
# The bundle's first entry, not the signature's: the whole bundle is
# checked against its tile, not only the entry asked for.
flip_byte "$T_DIR/bad/tile/entries/$B" 42
expect_rc "verify --log refuses the changed bundle" 5 "${V[@]}" --log "$T_DIR/bad"
check "... naming the link and the entry" \
    grep -q '^verify: log source: .*entry .* is not the entry the tree holds' "$T_DIR/err"
rm -rf "$T_DIR/bad"; cp -a "$M" "$T_DIR/bad"
flip_byte "$T_DIR/bad/tile/0/$B" $(((IDX % 256) * 32))
expect_rc "verify --log refuses a changed partial tile" 5 "${V[@]}" \
    --log "$T_DIR/bad"

stop_daemon
finish
