# toml-edit.awk — the TOML walker of update-runner-token.sh (and of doctor.sh): one awk program that
# reads a gitlab-runner config.toml once, on stdin. Run it with `awk -f toml-edit.awk` (mawk or gawk,
# LC_ALL=C for byte semantics). It ships next to update-runner-token.sh and doctor.sh, which look for
# it there (see find_walker in update-runner-token.sh); the SSM documents write it beside them.
#
# It validates the whole file, selects the runner and decides: "ok current", "ok kept-newer"
# (--unless-newer: the table's token expires later), or a change (VERB: change, add or remove;
# URT_MODE update, the default, or add or remove).
#   plan  (no URT_OUT): prints "ok VERB" for a change and writes nothing.
#   apply (URT_OUT set): makes the new file in memory and proves it (below), then writes the input's
#         own bytes to URT_BAK (when set) and the new file to URT_OUT, announcing each write first
#         ("writing backup", "writing new": a write that kills awk names itself), and prints
#         "ok VERB BYTES CHECK" (BYTES of the new file).
#   list  (URT_MODE list; read-only, for doctor.sh: no token file is read, nothing is selected or
#         written, every URT_ variable but URT_MODE is ignored): once the whole file is valid, prints
#         one line per [[runners]] table, in file order, then "ok list COUNT". A line is the word
#         "runner" and nine fields, each after a unit separator (\037): the table's number (1, 2, …),
#         name, url, id (as a number: "+07" is 7), token kind (missing: no token key or an empty
#         one; glrt: "glrt-" somewhere in it, also behind an instance prefix; legacy: any other), the
#         values of token_obtained_at and token_expires_at as written, 1 when
#         FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is true (the same test the update makes) else 0, and
#         tls-ca-file. A field is empty where the key is absent or not a one-line string or a bare
#         value; control characters a string decodes to (\n, \t) read as "?". The token itself is
#         never printed. A malformed file prints only its "err 4" line, as in the other modes.
#   The proof of the new file. CHECK "local": an update whose every edit is local, so the walker's
#   pass over the input proves the rest: a one-line value of the selected runner replaced by a
#   value of the same kind, or lines inserted right after a complete line of that runner (never
#   inside a multi-line value) whose key or table the runner does not define yet (the walker's table
#   of what is defined where says so). Each edited or inserted line is then read again on its own
#   (key, value, nothing after it) and must hold what was meant (the token in place, the flag true).
#   CHECK "readback": add, remove, and any other edit (an inline feature_flags table gains a key; a
#   key or table of that name exists already): the caller reads the new file back with this program,
#   which must find it valid and current.
# Errors print "err CODE MESSAGE". Inputs come through the environment (awk -v would interpret
# backslashes) and the tokens through their files (never through arguments or the environment):
#   URT_MODE update|add|remove|list, URT_URL, URT_ID, URT_FROM (add), URT_TOKEN_FILE, URT_PREV_FILE,
#   URT_NOW, URT_EXPIRES, URT_EXPIRES_FRAC, URT_UNLESS_NEWER, URT_OUT, URT_BAK, URT_SIZE.
# It is a line-based checker: it tokenises strings, brackets and comments well enough to never be
# fooled by `[[runners]]` or `token = …` inside a multi-line string or a comment. It also checks the
# TOML grammar of values (numbers, dates and times, escapes, commas in arrays and inline tables) and
# that no table or key is defined twice (headers, dotted keys, arrays of tables).
# The SSM documents embed this file without its comment lines and indentation (readScript in
# src/adapters/aws/host-update-document.ts): no string or regular expression may span lines.

function bad(msg) { if (err == "") { err = msg; errcode = 4; errline = NR } return 0 }
function bad_at(line, msg) { if (err == "") { err = msg; errcode = 4; errline = line } return 0 }
function fail(code, msg) { if (err == "") { err = msg; errcode = code; errline = 0 } }
# Runs of blanks, bare-value and bare-key characters: one match() per window of the line, not one
# step per character (a window doubles while the run fills it, so the work stays linear in the run).
function skip_ws(s, p,    c, w) {
  c = substr(s, p, 1)
  if (c != " " && c != "\t") return p
  for (w = 16; match(substr(s, p, w), /^[ \t]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p
}
function bare_end(s, p,    w) {
  for (w = 32; match(substr(s, p, w), /^[A-Za-z0-9_+.:-]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p - 1
}
function key_end(s, p,    w) {
  for (w = 32; match(substr(s, p, w), /^[A-Za-z0-9_-]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p - 1
}

# Length of the escape sequence at s[p] (a backslash) in a basic string, or 0 when it is not valid
# TOML (1.0, plus \e and \xHH of 1.1). mlb: in a multi-line basic string, where a backslash that
# ends the line (trailing blanks allowed) is a line-ending backslash.
function esc_len(s, p, mlb,    d, n, h) {
  d = substr(s, p + 1, 1)
  if (d != "" && index("btnfre\"\\", d)) return 2
  if (d == "x") n = 2
  else if (d == "u") n = 4
  else if (d == "U") n = 8
  else if (mlb && substr(s, p + 1) ~ /^[ \t]*$/) return length(s) - p + 1
  else return 0
  h = substr(s, p + 2, n)
  if (length(h) != n || h ~ /[^0-9A-Fa-f]/) return 0
  if (n > 2) {
    # A Unicode scalar value: at most 10FFFF and no surrogate.
    h = toupper(h); sub(/^0+/, "", h)
    if (length(h) > 6 || (length(h) == 6 && h > "10FFFF") || (length(h) == 4 && h >= "D800" && h <= "DFFF")) return 0
  }
  return n + 2
}

# Sets SERR for an escape sequence that is not valid at s[p]; returns 0.
function esc_bad(s, p) { SERR = "invalid escape sequence \\" substr(s, p + 1, 1) " in a string"; return 0 }

# Position of the quote that closes the one-line string opening at p, or 0 (SERR says why).
function str_end(s, p,    q, c, e, w) {
  SERR = "unterminated string"
  q = substr(s, p, 1); p++
  if (q == "\047") {
    # Looked for in windows that double, never in the whole rest of the line (a copy of it for
    # each string: quadratic on a line of many strings); linear in the length of the string.
    for (w = 64; ; w *= 2) {
      e = index(substr(s, p, w), "\047")
      if (e) return p + e - 1
      if (p + w > length(s)) return 0
    }
  }
  # From one quote or backslash to the next, found in windows as above.
  w = 32
  while (p <= length(s)) {
    if (!match(substr(s, p, w), /["\\]/)) { p += w; w *= 2; continue }
    p += RSTART - 1; w = 32
    if (substr(s, p, 1) == "\\") {
      if (p == length(s)) return 0
      e = esc_len(s, p, 0)
      if (!e) return esc_bad(s, p)
      p += e; continue
    }
    return p
  }
  return 0
}

# \n, \t and \r decoded, any other \X read as X, a lone backslash at the end kept. With gsub, which is
# linear in mawk and gawk alike; appending one character at a time is not (mawk copies the whole
# string on every append: minutes for a string of a few hundred KB). An escaped backslash is \001
# meanwhile: no line holds a control character (checked before anything is parsed). A replacement of
# one backslash ("\\") means one backslash in both awks ("\\\\" gives two in gawk).
function unescape(v,    t) {
  if (!index(v, "\\")) return v
  gsub(/\\\\/, "\001", v)
  t = ""
  if (substr(v, length(v)) == "\\") { t = "\\"; v = substr(v, 1, length(v) - 1) }
  gsub(/\\n/, "\n", v); gsub(/\\t/, "\t", v); gsub(/\\r/, "\r", v)
  gsub(/\\/, "", v); gsub(/\001/, "\\", v)
  return v t
}

# A[lo..hi] joined with sep, halves first: O(n log n) bytes copied, where appending one part at a
# time copies the whole result each time (quadratic for a key of thousands of dotted parts).
function tjoin(A, lo, hi, sep,    mid) {
  if (lo >= hi) return lo == hi ? A[lo] : ""
  mid = int((lo + hi) / 2)
  return tjoin(A, lo, mid, sep) sep tjoin(A, mid + 1, hi, sep)
}

# Position after the """ or triple-single-quote that closes the open multi-line string, or 0 (also
# after an invalid escape sequence, which sets err).
function ml_close(s, p,    c, e, q) {
  q = (ml == "mlbasic") ? "\"" : "\047"
  while (p <= length(s)) {
    c = substr(s, p, 1)
    if (q == "\"" && c == "\\") {
      e = esc_len(s, p, 1)
      if (!e) { esc_bad(s, p); bad(SERR); return 0 }
      p += e; continue
    }
    if (substr(s, p, 3) == q q q) {
      p += 3
      # Up to two more quotes belong to the content ("""a""""" is legal).
      for (e = 0; e < 2 && substr(s, p, 1) == q; e++) p++
      return p
    }
    p++
  }
  return 0
}

# Dotted key (bare or quoted parts) at p; sets KEND (after trailing blanks), KERR (2: bad string,
# SERR says why), and the parts KP[1..KPN].
function parse_key(s, p,    part, c, e) {
  KERR = 0; KPN = 0
  while (1) {
    p = skip_ws(s, p); c = substr(s, p, 1)
    if (c == "\"" || c == "\047") {
      e = str_end(s, p)
      if (!e) { KERR = 2; return "" }
      part = substr(s, p + 1, e - p - 1)
      if (c == "\"") part = unescape(part)
      p = e + 1
    } else {
      e = key_end(s, p)
      if (e < p) { KERR = 1; return "" }
      part = substr(s, p, e - p + 1); p = e + 1
    }
    KP[++KPN] = part
    p = skip_ws(s, p)
    if (substr(s, p, 1) == ".") { p++; continue }
    KEND = p
    return KPN == 1 ? KP[1] : KPN == 2 ? KP[1] "." KP[2] : tjoin(KP, 1, KPN, ".")
  }
}

# ---- What is defined where (a table or key may be defined only once) ----
# Every table and key is a node, numbered: 0 is the root table, NODE[nd, part] the child part of
# node nd. TY[node]: H table of a [header], I table created as the parent of a header, D table
# created by dotted keys, A array of tables ([[header]]), V any other value. AE[node] of an array of
# tables is the node of its current element; CUR is the node of the table of the current header.
# (Numbers rather than paths of all the parts: a path for every prefix of a key of thousands of
# dotted parts would be quadratic in time and memory.)

# The child part of node nd, made with type ty when there is none (then NEWN is 1).
function child(nd, part, ty) {
  NEWN = !((nd, part) in NODE)
  if (NEWN) { NODE[nd, part] = ++NID; TY[NID] = ty }
  return NODE[nd, part]
}

# Registers the key KP[1..KPN] (named name) in the table of node base.
function reg_key(base, name,    i, nd) {
  nd = base
  for (i = 1; i < KPN; i++) {
    nd = child(nd, KP[i], "D")
    if (TY[nd] != "D") return bad("duplicate key " name " (" key_prefix(i) " is already defined)")
  }
  child(nd, KP[KPN], "V")
  if (!NEWN) return bad("duplicate key " name)
  return 1
}

# The first parts KP[1..upto] of the key, as written in a message.
function key_prefix(upto) { return tjoin(KP, 1, upto, ".") }

# Registers the header [name] or [[name]] (parts KP[1..KPN]) and makes it the current table.
function reg_header(name, aot,    i, nd, t) {
  nd = 0
  for (i = 1; i < KPN; i++) {
    nd = child(nd, KP[i], "I")
    if (TY[nd] == "A") nd = AE[nd]
    else if (TY[nd] == "V") return bad("table " name ": " key_prefix(i) " is already defined as a value")
  }
  nd = child(nd, KP[KPN], "")
  t = TY[nd]
  if (aot) {
    if (t == "") TY[nd] = "A"
    else if (t != "A") return bad("array of tables [[" name "]] redefines " (t == "V" ? "a value" : "a table"))
    CUR = AE[nd] = ++NID
    return 1
  }
  if (t == "" || t == "I") { TY[nd] = "H"; CUR = nd; return 1 }
  if (t == "H") return bad("duplicate table [" name "]")
  if (t == "D") return bad("duplicate table [" name "] (already defined by dotted keys)")
  if (t == "A") return bad("table [" name "] redefines the array of tables [[" name "]]")
  return bad("table [" name "] redefines a value")
}

# ---- Values ----
function is_date(d,    y, m, n) {
  y = substr(d, 1, 4) + 0; m = substr(d, 6, 2) + 0; n = substr(d, 9, 2) + 0
  if (m < 1 || m > 12 || n < 1) return 0
  if (m == 2) return n <= ((y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28)
  return n <= ((m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31)
}

# HH:MM[:SS[.frac]] with an optional offset Z or +HH:MM / -HH:MM.
function is_time(t,    o) {
  if (substr(t, 1, 2) + 0 > 23 || substr(t, 4, 2) + 0 > 59) return 0
  if (substr(t, 6, 1) == ":" && substr(t, 7, 2) + 0 > 59) return 0
  if (t ~ /[+-][0-9][0-9]:[0-9][0-9]$/) {
    o = substr(t, length(t) - 4)
    if (substr(o, 1, 2) + 0 > 23 || substr(o, 4, 2) + 0 > 59) return 0
  }
  return 1
}

# Digits of a radix integer (no prefix) fit in a signed 64-bit integer.
function radix_fits(w, maxlen, maxfirst) {
  gsub(/_/, "", w); sub(/^0+/, "", w)
  return length(w) < maxlen || (length(w) == maxlen && substr(w, 1, 1) <= maxfirst)
}

function valid_bare(v,    w) {
  if (v == "true" || v == "false") return 1
  if (v ~ /^[+-]?(inf|nan)$/) return 1
  if (v ~ /^[+-]?(0|[1-9](_?[0-9])*)$/) {
    # A signed 64-bit integer.
    w = v; gsub(/_/, "", w); sub(/^\+/, "", w)
    if (substr(w, 1, 1) == "-") return radix_fits(substr(w, 2), 19, "9") && !(length(w) == 20 && substr(w, 2) > "9223372036854775808")
    return radix_fits(w, 19, "9") && !(length(w) == 19 && w > "9223372036854775807")
  }
  if (v ~ /^[+-]?(0|[1-9](_?[0-9])*)(\.[0-9](_?[0-9])*)?([eE][+-]?[0-9](_?[0-9])*)?$/) return 1
  if (v ~ /^0x[0-9A-Fa-f](_?[0-9A-Fa-f])*$/) return radix_fits(substr(v, 3), 16, "7")
  if (v ~ /^0o[0-7](_?[0-7])*$/) return radix_fits(substr(v, 3), 21, "7")
  if (v ~ /^0b[01](_?[01])*$/) return radix_fits(substr(v, 3), 63, "1")
  if (v ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]([Tt ][0-9][0-9]:[0-9][0-9](:[0-9][0-9](\.[0-9]+)?)?([Zz]|[+-][0-9][0-9]:[0-9][0-9])?)?$/)
    return is_date(v) && (length(v) == 10 || is_time(substr(v, 12)))
  if (v ~ /^[0-9][0-9]:[0-9][0-9](:[0-9][0-9](\.[0-9]+)?)?$/) return is_time(v)
  return 0
}

# Last position of the bare scalar at p (a local date and time may be separated by a space).
function scalar_end(s, p,    e) {
  e = bare_end(s, p)
  if (substr(s, p, e - p + 1) ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/ && substr(s, e + 1, 1) == " " && substr(s, e + 2, 1) ~ /[0-9]/)
    e = bare_end(s, e + 2)
  return e
}

# After a complete top-level value only blanks and a comment may follow.
function after_value(s, p,    c) {
  p = skip_ws(s, p)
  if (p > length(s) || substr(s, p, 1) == "#") return
  c = substr(s, p, 1)
  if (c == "]" || c == "}") bad("unbalanced brackets")
  else bad("unexpected text after value")
}

# Whether s[p..] reads as `key =` or the line as a table header: in an open array, the next line
# of the document (neither can be an array element).
function looks_kv(s, p) { parse_key(s, p); return !KERR && substr(s, KEND, 1) == "=" }
function looks_hdr(s, p) { return p == lws && s ~ /^[ \t]*\[\[?[ \t]*[A-Za-z_][A-Za-z0-9_. \t-]*\]\]?[ \t]*(#.*)?$/ }

# A value (scalar or bracket) just ended at the current depth: returns 1 when it was the top-level one.
function vdone() { if (!sd) return 1; st[sd] = "c"; return 0 }

# Closes the open array or inline table with c ("]" or "}").
function vclose(c) {
  if (sk[sd] != (c == "]" ? "[" : "{")) return bad("unbalanced brackets")
  sd--
  return 1
}

# Reads a value from p, also across lines: the open arrays and inline tables are sk[1..sd] ("[" or
# "{"; an array and a depth, not a string copied on each push: quadratic in the depth), with the
# state of each level in st[1..] (v: an element or "]"; c: a comma or the closing bracket; k: a key
# or "}"; V: a value is required), and ml is an open multi-line string. Returns the position after
# the top-level value once it is complete; 0 when the line ends with the value still open, or on an
# error (err is set).
function vscan(s, p,    c, d, t, e, top, key) {
  while (1) {
    if (ml != "") {
      e = ml_close(s, p)
      if (!e) return 0
      ml = ""; p = e
      if (vdone()) return p
      continue
    }
    p = skip_ws(s, p)
    d = sd; top = sk[d]; t = st[d]
    if (p > length(s) || substr(s, p, 1) == "#") {
      if (d == 0) return bad("missing value")
      if (t == "V") return bad("missing value in an inline table")
      return 0
    }
    c = substr(s, p, 1)
    if (top == "[" && ((c == "[" && looks_hdr(s, p)) || (index("[]{},", c) == 0 && looks_kv(s, p))))
      return bad("unbalanced brackets (the \"[\" opened at line " stk_open " is not closed)")
    if (t == "c") {
      if (c == ",") { st[d] = (top == "[") ? "v" : "k"; p++; continue }
      if (c == "]" || c == "}") { if (!vclose(c)) return 0; p++; if (vdone()) return p; continue }
      return bad(top == "[" ? "missing comma between array elements" : "missing comma between inline-table entries")
    }
    if (t == "k") {
      if (c == "}") { vclose(c); p++; if (vdone()) return p; continue }
      if (c == ",") return bad("empty entry in an inline table")
      if (c == "]") return bad("unbalanced brackets")
      key = parse_key(s, p)
      if (KERR == 2) return bad(SERR)
      if (KERR || substr(s, KEND, 1) != "=") return bad("expected key = value in an inline table")
      if (!reg_key(ipath[d], key)) return 0
      st[d] = "V"; p = KEND + 1; continue
    }
    # t is "V" (a value) or "v" (an array element or "]").
    if (c == "]" && t == "v") { vclose(c); p++; if (vdone()) return p; continue }
    if (c == "[" || c == "{") {
      if (d == 0) stk_open = NR
      sk[++sd] = c; st[sd] = (c == "[") ? "v" : "k"
      if (c == "{") ipath[sd] = ++NID
      p++; continue
    }
    if (c == "\"" || c == "\047") {
      if (substr(s, p, 3) == c c c) { ml = (c == "\"") ? "mlbasic" : "mlliteral"; ml_open = NR; p += 3; continue }
      e = str_end(s, p)
      if (!e) return bad(SERR)
      p = e + 1
      if (vdone()) return p
      continue
    }
    if (d > 0 && c == ",") return bad(top == "[" ? "empty array element" : "missing value in an inline table")
    if (d > 0 && c == "}" && top == "{") return bad("missing value in an inline table")
    if (d > 0 && (c == "]" || c == "}")) return bad("unbalanced brackets")
    e = scalar_end(s, p)
    if (e < p || !valid_bare(substr(s, p, e - p + 1))) return bad("invalid value")
    p = e + 1
    if (vdone()) return p
  }
}

# First value of a key/value line, at p. Sets VK (kind), VS/VE (span), VD (decoded scalar).
function value_start(s, p,    c, e) {
  VS = p; VE = 0; VD = ""; VK = ""
  if (p > length(s) || substr(s, p, 1) == "#") return bad("missing value")
  c = substr(s, p, 1)
  if (c == "\"" || c == "\047") {
    if (substr(s, p, 3) == c c c) VK = (c == "\"") ? "mlbasic" : "mlliteral"
    else VK = (c == "\"") ? "basic" : "literal"
  } else if (c == "[") VK = "array"
  else if (c == "{") VK = "inline"
  else VK = "bare"
  sd = 0; st[0] = "V"
  # A one-line string or a bare scalar: what vscan does for them at the top level, without its loop.
  if (VK == "basic" || VK == "literal") { e = str_end(s, p); if (!e) return bad(SERR); e++ }
  else if (VK == "bare") {
    e = scalar_end(s, p)
    if (e < p || !valid_bare(substr(s, p, e - p + 1))) return bad("invalid value")
    e++
  } else e = vscan(s, p)
  if (err != "" || !e) return 0
  VE = e - 1
  if (VK == "basic" || VK == "literal") {
    VD = substr(s, p + 1, e - p - 2)
    if (VK == "basic") VD = unescape(VD)
  } else if (VK == "bare") VD = substr(s, p, e - p)
  after_value(s, e); return 0
}

# End position of the value at p inside a one-line inline table (string, bracketed or bare).
function inline_value_end(s, p,    c, d, e) {
  c = substr(s, p, 1)
  if (c == "\"" || c == "\047") return str_end(s, p)
  if (c == "[" || c == "{") {
    d = 0
    while (p <= length(s)) {
      c = substr(s, p, 1)
      if (c == "\"" || c == "\047") { e = str_end(s, p); if (!e) return 0; p = e + 1; continue }
      if (c == "[" || c == "{") d++
      if (c == "]" || c == "}") { d--; if (d == 0) return p }
      p++
    }
    return 0
  }
  return scalar_end(s, p)
}

# Look for the flag key at the top level of the one-line inline table s[a..b] ("{" … "}").
# Sets INS/INE/INV (span and text of its value); returns 1 when found.
function inline_find(s, a, b,    p, k, e) {
  p = a + 1
  while (p < b) {
    p = skip_ws(s, p)
    if (p >= b) return 0
    if (substr(s, p, 1) == ",") { p++; continue }
    k = parse_key(s, p)
    if (KERR || substr(s, KEND, 1) != "=") return 0
    p = skip_ws(s, KEND + 1)
    e = inline_value_end(s, p)
    if (!e) return 0
    if (k == FF) { INS = p; INE = e; INV = substr(s, p, e - p + 1); return 1 }
    p = e + 1
  }
  return 0
}

function header(s, p,    aot, name, q, closer, ind) {
  ind = substr(s, 1, p - 1)
  aot = (substr(s, p, 2) == "[[")
  name = parse_key(s, p + (aot ? 2 : 1))
  if (KERR == 2) return bad(SERR)
  closer = aot ? "]]" : "]"
  if (KERR || substr(s, KEND, length(closer)) != closer) return bad("bad table header")
  q = skip_ws(s, KEND + length(closer))
  if (q <= length(s) && substr(s, q, 1) != "#") return bad("bad table header")
  if (!reg_header(name, aot)) return 0
  if (aot && name == "runners") {
    R++; inr = 1; blk = "main"; rhdr[R] = NR; last[R] = NR; rnode[R] = CUR
    return 0
  }
  if (inr && substr(name, 1, 8) == "runners.") {
    if (!(R in subind)) subind[R] = ind
    last[R] = NR
    if (!aot && name == "runners.feature_flags") {
      if (R in ffhdr) return bad("duplicate table [runners.feature_flags]")
      if ((R in ffinl) || (R in ffdot)) return bad("feature_flags is defined twice")
      ffhdr[R] = NR; ffhind[R] = ind; blk = "ff"
    } else blk = "sub"
    return 0
  }
  # A [runners.x] after another top-level table still belongs to the last [[runners]] in TOML.
  if (R && substr(name, 1, 8) == "runners.") orphan[R] = NR
  inr = 0; blk = "other"
  return 0
}

function keyval(s, p,    key) {
  key = parse_key(s, p)
  if (KERR == 2) return bad(SERR)
  if (KERR || substr(s, KEND, 1) != "=") return bad("expected a table header or key = value")
  if (!reg_key(CUR, key)) return 0
  kvline = NR; kvkey = key; kvblk = blk; kvind = substr(s, 1, p - 1); kvr = inr ? R : 0
  value_start(s, skip_ws(s, KEND + 1))
  if (err == "" && ml == "" && !sd) record_kv(NR, 0)
  return 0
}

# Remember what the selection and the edit need about a key of a runner.
function record_kv(endline, multi) {
  if (!kvr) return
  last[kvr] = endline
  if (multi) VK = "multiline " VK
  if (kvblk == "main") {
    if (!(kvr in mind)) mind[kvr] = kvind
    if (kvkey == "url") { if (VK == "basic" || VK == "literal") rurl[kvr] = VD; urll[kvr] = kvline }
    else if (kvkey == "id") {
      hasid[kvr] = 1; idl[kvr] = kvline; idS[kvr] = VS; idE[kvr] = VE; idK[kvr] = VK; idV[kvr] = VD
      if ((VK == "bare" || VK == "basic" || VK == "literal") && VD ~ /^\+?[0-9]+$/) {
        rid[kvr] = VD; sub(/^\+?0*/, "", rid[kvr])
      }
    }
    else if (kvkey == "token") { tokl[kvr] = kvline; tokS[kvr] = VS; tokE[kvr] = VE; tokK[kvr] = VK; tokV[kvr] = VD }
    else if (kvkey == "token_obtained_at") { obtl[kvr] = kvline; obtS[kvr] = VS; obtE[kvr] = VE; obtK[kvr] = VK; obtV[kvr] = VD }
    else if (kvkey == "token_expires_at") { expl[kvr] = kvline; expS[kvr] = VS; expE[kvr] = VE; expK[kvr] = VK; expV[kvr] = VD }
    else if (kvkey == "feature_flags") {
      if (kvr in ffdot) return bad_at(kvline, "feature_flags is defined twice")
      ffinl[kvr] = kvline; ffinS[kvr] = VS; ffinE[kvr] = VE; ffinK[kvr] = VK
      if (VK == "inline" && inline_find(C[kvline], VS, VE)) {
        flagl[kvr] = kvline; flagS[kvr] = INS; flagE[kvr] = INE; flagV[kvr] = INV
        flagK[kvr] = (INV ~ /^["\047]/) ? "string" : "bare"
      }
    }
    else if (substr(kvkey, 1, 14) == "feature_flags.") {
      if (kvr in ffinl) return bad_at(kvline, "feature_flags is defined twice")
      ffdot[kvr] = endline
      if (kvkey == "feature_flags." FF) { flagl[kvr] = kvline; flagS[kvr] = VS; flagE[kvr] = VE; flagK[kvr] = VK; flagV[kvr] = VD }
    }
    # Read only by the list mode.
    else if (kvkey == "name") rname[kvr] = VD
    else if (kvkey == "tls-ca-file") rca[kvr] = VD
  } else if (kvblk == "ff") {
    fflast[kvr] = endline; ffkind[kvr] = kvind
    if (kvkey == FF) { flagl[kvr] = kvline; flagS[kvr] = VS; flagE[kvr] = VE; flagK[kvr] = VK; flagV[kvr] = VD }
  }
  return 0
}

function norm_url(u) { sub(/\/+$/, "", u); return u }

# Replace s[a..b] of line ln (CR already stripped) with text.
function edit(ln, a, b, text,    s) {
  if (ln in NEWC) { fail(1, "internal error: two edits on one line"); return }
  s = C[ln]; NEWC[ln] = substr(s, 1, a - 1) text substr(s, b + 1)
}
function insert_after(ln, text) { INSN[ln]++; INST[ln, INSN[ln]] = text }
# put TEXT LN — appends an output line: LN > 0 original line LN, -LN its copy, 0 a new line. An
# unterminated last line gets the line break of the file before the lines that follow it.
function put(text, ln,    i) {
  i = ln < 0 ? -ln : ln
  OT[++K] = text; OO[K] = ln
  OC[K] = !i ? eol : CRF[i] ? "\r" : (i == n && !finalnl) ? eol : ""
}
# The header lines of the matches M[1..nm], as "3, 17, 40" (joined by tjoin: there may be thousands).
function match_lines(    i) { for (i = 1; i <= nm; i++) ML[i] = rhdr[M[i]]; return tjoin(ML, 1, nm, ", ") }
function pick(id,    i, r) {
  nm = 0
  for (i = 1; i <= nu; i++) { r = U[i]; if ((r in rid) && rid[r] == id) M[++nm] = r }
  lines = match_lines()
  return nm
}
# ---- The list mode (doctor.sh; see the top of the program): what each [[runners]] table holds ----
# A field of a list line: one line, no unit separator.
function lfield(v) { gsub(/[\001-\037\177]/, "?", v); return v }
function list_runners(    r, kind, id) {
  for (r = 1; r <= R; r++) {
    # The token's kind only: the token itself never leaves this program.
    if (!(r in tokl) || ((tokK[r] == "basic" || tokK[r] == "literal") && tokV[r] == "")) kind = "missing"
    else if ((tokK[r] == "basic" || tokK[r] == "literal") && index(tokV[r], "glrt-")) kind = "glrt"
    else kind = "legacy"
    id = (r in rid) ? rid[r] : idV[r]
    print "runner\037" r "\037" lfield(rname[r]) "\037" lfield(rurl[r]) "\037" lfield(id) "\037" kind "\037" lfield(obtV[r]) "\037" lfield(expV[r]) "\037" ((r in flagl) && flagK[r] == "bare" && flagV[r] == "true" ? 1 : 0) "\037" lfield(rca[r])
  }
  print "ok list " R
}
function styled(kind, v) { return kind == "basic" ? "\"" v "\"" : kind == "literal" ? "\047" v "\047" : v }

# ---- The proof of a local edit (see the top of the program) ----
# expect_kv TEXT KEY KIND VALUE — the edited or inserted line TEXT must read, on its own, as KEY = a
# value of KIND (basic, literal, bare; "inline": an inline table whose flag is true) decoding to VALUE.
# KEY FF: the flag, in the flags table or as a dotted key.
function expect_kv(text, key, kind, value) { NX++; XT[NX] = text; XK[NX] = key; XKIND[NX] = kind; XV[NX] = value }
function check_kv(s, key, kind, value,    k) {
  if (s ~ CTL) return 0
  k = parse_key(s, skip_ws(s, 1))
  if (key == FF && k == "feature_flags." FF) k = FF
  if (KERR || k != key || substr(s, KEND, 1) != "=") return 0
  value_start(s, skip_ws(s, KEND + 1))
  if (err != "" || ml != "" || sd) return 0
  if (kind == "inline") return VK == "inline" && inline_find(s, VS, VE) && INV == "true"
  return VK == kind && VD == value
}

# ---- Instants (--unless-newer) ----
# Days from 1970-01-01 to the proleptic Gregorian date y-m-d (days_from_civil of H. Hinnant; the
# year is moved on by 400 years, exactly 146097 days, so that int() never sees a negative number).
function days_from_civil(y, m, d,    era, yoe, doy, doe) {
  y += 400 - (m <= 2)
  era = int(y / 400); yoe = y - era * 400
  doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
  doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
  return era * 146097 + doe - 719468 - 146097
}
# Reads the offset date-time v (a TOML one: T, t or a space between date and time, Z, z or an
# offset): DT_S its seconds since the epoch (whole, UTC), DT_F its fraction of a second as digits
# without trailing zeros (so that a plain string comparison orders fractions). 0 when v is not one,
# or holds year 0001, "unknown" for gitlab-runner (the zero time.Time).
function dt_parse(v,    o, f) {
  if (length(v) < 20 || substr(v, 17, 1) != ":" || v !~ /([Zz]|:[0-9][0-9])$/ || !valid_bare(v) || substr(v, 1, 4) == "0001") return 0
  o = substr(v, length(v) - 5)
  o = (o ~ /^[+-]/) ? (substr(o, 1, 3) * 60 + (substr(o, 1, 1) substr(o, 5))) * 60 : 0
  f = (substr(v, 20, 1) == ".") ? substr(v, 21) : ""
  sub(/[^0-9].*$/, "", f); sub(/0+$/, "", f); DT_F = f
  DT_S = days_from_civil(substr(v, 1, 4) + 0, substr(v, 6, 2) + 0, substr(v, 9, 2) + 0) * 86400 + substr(v, 12, 2) * 3600 + substr(v, 15, 2) * 60 + substr(v, 18, 2) - o
  return 1
}
# Whether the instant v is strictly later than the instant of --expires-at (URT_EXPIRES, in UTC with
# whole seconds, and the digits of its fraction of a second, URT_EXPIRES_FRAC). Never when either is
# not an offset date-time or is unknown.
function later_than_expiry(v,    s, f) {
  if (!dt_parse(v)) return 0
  s = DT_S; f = DT_F
  if (!dt_parse(ENVIRON["URT_EXPIRES"])) return 0
  DT_F = ENVIRON["URT_EXPIRES_FRAC"]; sub(/0+$/, "", DT_F)
  return s > DT_S || (s == DT_S && ("x" f) > ("x" DT_F))
}

BEGIN {
  FF = "FF_DISABLE_AUTOMATIC_TOKEN_ROTATION"
  BOM = sprintf("%c%c%c", 239, 187, 191)
  CTL = "[" sprintf("%c", 1) "-" sprintf("%c", 8) sprintf("%c", 11) "-" sprintf("%c", 31) sprintf("%c", 127) "]"
  err = ""; R = 0; inr = 0; blk = "other"; ml = ""; sd = 0; sk[0] = ""; CUR = 0; NID = 0; ncr = 0; nbytes = 0; NX = 0; nonlocal = 0
  out = ENVIRON["URT_OUT"]; want_url = norm_url(ENVIRON["URT_URL"]); want_id = ENVIRON["URT_ID"]
  tokfile = ENVIRON["URT_TOKEN_FILE"]; prevfile = ENVIRON["URT_PREV_FILE"]
  mode = ENVIRON["URT_MODE"]; if (mode == "") mode = "update"
  if (mode == "remove" || mode == "list") tokfile = ""
  if (mode == "list") prevfile = ""
  if (tokfile != "" && ((getline newtok < tokfile) <= 0 || newtok == "")) { fail(1, "internal error: cannot read the token file"); exit }
  if (tokfile != "") close(tokfile)
  haveprev = 0
  if (prevfile != "") {
    if ((getline prevtok < prevfile) <= 0 || prevtok == "") { fail(1, "internal error: cannot read the previous token file"); exit }
    close(prevfile); haveprev = 1
  }
}

{
  s = $0; nbytes += length(s) + 1
  if (NR == 1 && substr(s, 1, 3) == BOM) { bom = BOM; s = substr(s, 4) }
  cr = (substr(s, length(s), 1) == "\r")
  if (cr) s = substr(s, 1, length(s) - 1)
  C[NR] = s; CRF[NR] = cr; ncr += cr
  if (s ~ CTL) { bad("control character"); exit }
  # Where the line starts (looks_hdr: once per line, not once per "[" of a long array).
  lws = skip_ws(s, 1)
  if (ml != "" || sd) {
    e = vscan(s, 1)
    if (err == "" && ml == "" && !sd) { after_value(s, e); if (err == "") record_kv(NR, 1) }
    if (err != "") exit
    next
  }
  p = lws
  if (p > length(s) || substr(s, p, 1) == "#") { PLAIN[NR] = 1; next }
  if (substr(s, p, 1) == "[") header(s, p)
  else keyval(s, p)
  if (err != "") exit
}

END {
  n = NR
  if (err == "" && ml != "") bad_at(ml_open, "unterminated multi-line string")
  if (err == "" && sd) bad_at(stk_open, "unbalanced brackets (the \"" sk[1] "\" is never closed)")
  if (err != "") {
    # One line whatever a quoted key held.
    gsub(/[\001-\037\177]/, "?", err)
    if (errcode == 4) print "err 4 malformed TOML at line " errline ": " err
    else print "err " errcode " " err
    exit 0
  }
  if (mode == "list") { list_runners(); exit 0 }

  # Selection: url first, then id; where no table of that url has an id, the previous token.
  # add and remove select by id only. add: the table of the new id when there is one (then updated
  # as in update mode), else a copy of the table of URT_FROM. remove: no such table is current.
  nu = 0; anyid = 0; copy = 0
  for (r = 1; r <= R; r++) if ((r in rurl) && norm_url(rurl[r]) == want_url) { U[++nu] = r; if (r in hasid) anyid = 1 }
  if (mode != "update") {
    if (nu && !anyid) { print "err 5 no [[runners]] table with url " want_url " has an id; --mode " mode " selects by id"; exit 0 }
    if (!pick(want_id)) {
      if (mode == "remove") { print "ok current"; exit 0 }
      copy = 1
      if (!pick(ENVIRON["URT_FROM"])) { print "err 5 no [[runners]] table has url " want_url " and id " ENVIRON["URT_FROM"] " (the runner to copy)"; exit 0 }
    }
    if (nm > 1) { print "err 6 " nm " [[runners]] tables have url " want_url " and id " (copy ? ENVIRON["URT_FROM"] : want_id) " (lines " lines ")"; exit 0 }
    T = M[1]
    if (T in orphan) { print "err 4 malformed TOML at line " orphan[T] ": a [runners.*] table of the selected runner follows another table; --mode " mode " will not edit it"; exit 0 }
  } else {
    if (nu == 0) { print "err 5 no [[runners]] table has url " want_url; exit 0 }
    nm = 0
    for (i = 1; i <= nu; i++) {
      r = U[i]
      if (anyid) { if ((r in rid) && rid[r] == want_id) M[++nm] = r }
      else if (haveprev && (r in tokV) && (tokV[r] == prevtok || tokV[r] == newtok)) M[++nm] = r
    }
    lines = match_lines()
    if (!anyid && !haveprev) { print "err 5 no [[runners]] table with url " want_url " has an id; --previous-token-file is needed to select one"; exit 0 }
    if (nm == 0) {
      if (anyid) print "err 5 no [[runners]] table has url " want_url " and id " want_id
      else print "err 5 no [[runners]] table with url " want_url " holds the previous token"
      exit 0
    }
    if (nm > 1) {
      if (anyid) print "err 6 " nm " [[runners]] tables have url " want_url " and id " want_id " (lines " lines ")"
      else print "err 6 " nm " [[runners]] tables with url " want_url " hold the previous or new token (lines " lines ")"
      exit 0
    }
    T = M[1]
    # --unless-newer (a converge that may race a rotation): a table whose token expires later than
    # this one, and is another token, keeps it.
    if (ENVIRON["URT_UNLESS_NEWER"] == "1" && (T in expl) && !((T in tokV) && tokV[T] == newtok) && later_than_expiry(expV[T])) {
      print "ok kept-newer"; exit 0
    }
  }

  eol = (ncr * 2 > n) ? "\r" : ""
  ind = (T in mind) ? mind[T] : "  "
  subi = (T in subind) ? subind[T] : ind

  if (mode == "remove") {
    # The table, its sub-tables and the comment lines right above its header; comments after its
    # last key lead into the next table and stay. One run of blank lines goes too (the one before
    # it when a blank line or the end of the file follows it; at the start of the file, the one
    # after it), so no double gap is left behind.
    a = rhdr[T]; z = last[T]
    while (a > 1 && PLAIN[a - 1] && C[a - 1] !~ /^[ \t]*$/) a--
    if (a == 1) { while (z < n && PLAIN[z + 1] && C[z + 1] ~ /^[ \t]*$/) z++ }
    else if (z == n || (PLAIN[z + 1] && C[z + 1] ~ /^[ \t]*$/)) { while (a > 1 && PLAIN[a - 1] && C[a - 1] ~ /^[ \t]*$/) a-- }
    for (i = a; i <= z; i++) DEL[i] = 1
  } else {
    # Token. Tn: the node of the table of the runner, to see whether a key or table is defined in it.
    tokchanged = copy; Tn = rnode[T]
    if (!(T in tokl)) {
      text = ind "token = \"" newtok "\""
      insert_after((T in idl) ? idl[T] : (T in urll) ? urll[T] : rhdr[T], text)
      tokchanged = 1
      if ((Tn, "token") in NODE) nonlocal = 1
      else expect_kv(text, "token", "basic", newtok)
    } else if (tokK[T] != "basic" && tokK[T] != "literal") {
      print "err 4 malformed TOML at line " tokl[T] ": the token of the selected runner is not a one-line string"; exit 0
    } else if (tokV[T] != newtok) {
      edit(tokl[T], tokS[T], tokE[T], styled(tokK[T], newtok)); tokchanged = 1
      expect_kv(NEWC[tokl[T]], "token", tokK[T], newtok)
    }

    # Flag
    flagok = (T in flagl) && flagK[T] == "bare" && flagV[T] == "true"
    if (!flagok) {
      ffn = ((Tn, "feature_flags") in NODE) ? NODE[Tn, "feature_flags"] : -1
      if (T in flagl) {
        if (flagK[T] ~ /^multiline/) { print "err 4 malformed TOML at line " flagl[T] ": " FF " has a multi-line value"; exit 0 }
        edit(flagl[T], flagS[T], flagE[T], "true")
        j = (T in ffinl) && flagl[T] == ffinl[T]
        expect_kv(NEWC[flagl[T]], j ? "feature_flags" : FF, j ? "inline" : "bare", "true")
      } else if (T in ffhdr) {
        text = ((T in ffkind) ? ffkind[T] : ffhind[T] "  ") FF " = true"
        insert_after((T in fflast) ? fflast[T] : ffhdr[T], text)
        if ((ffn, FF) in NODE) nonlocal = 1
        else expect_kv(text, FF, "bare", "true")
      } else if (T in ffinl) {
        if (ffinK[T] != "inline") { print "err 4 malformed TOML at line " ffinl[T] ": feature_flags of the selected runner is not a one-line inline table"; exit 0 }
        # Appended as the last key of the inline table (not a local edit: read back).
        s = C[ffinl[T]]; a = ffinS[T]; b = ffinE[T]; j = b - 1
        while (j > a && (substr(s, j, 1) == " " || substr(s, j, 1) == "\t")) j--
        if (j == a) edit(ffinl[T], a, b, "{ " FF " = true }")
        else if (substr(s, j, 1) == ",") edit(ffinl[T], j + 1, j, " " FF " = true")
        else edit(ffinl[T], j + 1, j, ", " FF " = true")
        nonlocal = 1
      } else if (T in ffdot) {
        text = ind "feature_flags." FF " = true"
        insert_after(ffdot[T], text)
        if ((ffn, FF) in NODE) nonlocal = 1
        else expect_kv(text, FF, "bare", "true")
      } else {
        insert_after(last[T], subi "[runners.feature_flags]")
        insert_after(last[T], subi "  " FF " = true")
        # A header of this shape is local only where the runner has no feature_flags at all (not even
        # as the parent of a [runners.feature_flags.x] table, or a table after another table).
        if (ffn != -1) nonlocal = 1
        else expect_kv(subi "  " FF " = true", FF, "bare", "true")
      }
    }
    if (err != "") { print "err " errcode " " err; exit 0 }
    if (!tokchanged && flagok) { print "ok current"; exit 0 }

    # Timestamps: obtained only when the token really changes; expiry whenever one is given. A copy
    # without --expires-at gets the zero time of gitlab-runner (unknown), never the expiry of the old one.
    if (copy) edit(idl[T], idS[T], idE[T], styled(idK[T], want_id))
    expv = ENVIRON["URT_EXPIRES"]
    if (copy && expv == "") expv = "0001-01-01T00:00:00Z"
    if (tokchanged && (T in obtl) && (obtK[T] == "bare" || obtK[T] == "basic" || obtK[T] == "literal")) {
      edit(obtl[T], obtS[T], obtE[T], styled(obtK[T], ENVIRON["URT_NOW"]))
      expect_kv(NEWC[obtl[T]], "token_obtained_at", obtK[T], ENVIRON["URT_NOW"])
    }
    if (expv != "" && (T in expl) && (expK[T] == "bare" || expK[T] == "basic" || expK[T] == "literal")) {
      edit(expl[T], expS[T], expE[T], styled(expK[T], expv))
      expect_kv(NEWC[expl[T]], "token_expires_at", expK[T], expv)
    }
    if (err != "") { print "err " errcode " " err; exit 0 }
  }
  # add and remove move whole sections: read back.
  if (copy || mode == "remove") nonlocal = 1

  verb = copy ? "add" : (mode == "remove") ? "remove" : "change"
  if (out == "") { print "ok " verb; exit 0 }
  # The proof of a local edit, before anything is written.
  for (i = 1; i <= NX && !nonlocal; i++)
    if (!check_kv(XT[i], XK[i], XKIND[i], XV[i])) { print "err 7 the new file did not verify; nothing was replaced"; exit 0 }
  # Whether the input ended with a line break (awk cannot tell): its bytes against the size of the file.
  size = ENVIRON["URT_SIZE"] + 0
  if (n == 0) finalnl = 0
  else if (nbytes == size) finalnl = 1
  else if (nbytes == size + 1) finalnl = 0
  else { print "err 7 the config file changed while it was read; nothing was written"; exit 0 }
  # The lines of the new file, each with its CR (or that of the file) in OC; the copy of an added runner
  # follows the last line of the old one, after one blank line.
  K = 0
  for (i = 1; i <= n; i++) {
    if (i in DEL) continue
    put(copy ? C[i] : (i in NEWC) ? NEWC[i] : C[i], i)
    if (!copy) { for (k = 1; k <= INSN[i]; k++) put(INST[i, k], 0) }
    else if (i == last[T]) {
      put("", 0)
      for (j = rhdr[T]; j <= last[T]; j++) {
        put((j in NEWC) ? NEWC[j] : C[j], -j)
        for (k = 1; k <= INSN[j]; k++) put(INST[j, k], 0)
      }
    }
  }
  # The backup: the bytes that were read, as they were.
  bak = ENVIRON["URT_BAK"]
  if (bak != "") {
    print "writing backup"; fflush()
    printf "%s", "" > bak
    for (i = 1; i <= n; i++) printf "%s", (i == 1 ? bom : "") C[i] (CRF[i] ? "\r" : "") ((i < n || finalnl) ? "\n" : "") > bak
    if (close(bak) != 0) { print "err 7 writing the backup copy failed"; exit 0 }
  }
  print "writing new"; fflush()
  # Opens the output even when no line is left (the file then holds at most the BOM).
  chunk = K ? "" : bom
  printf "%s", chunk > out; total = length(chunk)
  for (k = 1; k <= K; k++) {
    # The last line keeps a missing final newline (a bare CR stays only on the original last line).
    chunk = (k == 1 ? bom : "") OT[k] ((k < K || finalnl) ? OC[k] "\n" : (OO[k] == n && CRF[n]) ? "\r" : "")
    printf "%s", chunk > out; total += length(chunk)
  }
  if (close(out) != 0) { print "err 7 writing the new file failed"; exit 0 }
  print "ok " verb " " total " " (nonlocal ? "readback" : "local")
}
