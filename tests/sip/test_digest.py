"""Digest authentication: RFC vectors, header grammar, the stateless-nonce server, the ban list."""

import base64

import pytest

from labkit.sip.digest import (
    AuthOutcome,
    Credential,
    DigestChallenge,
    DigestCredentials,
    DigestError,
    DigestServer,
    FailureBan,
    NonceCounts,
    authorization_for,
    compute_ha1,
    compute_response,
    parse_auth_params,
    pick_challenge,
)

# RFC 7616 §3.9.1
RFC7616 = dict(
    method="GET",
    uri="/dir/index.html",
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    username="Mufasa",
    realm="http-auth@example.org",
    password="Circle of Life",
    qop="auth",
    nc="00000001",
    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
)
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_rfc7616_md5_vector():
    assert compute_response("MD5", **RFC7616) == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc7616_sha256_vector():
    assert (
        compute_response("SHA-256", **RFC7616)
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_rfc2617_vector():
    response = compute_response(
        "MD5",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        qop="auth",
        nc=1,
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_precomputed_ha1_gives_same_response_as_password():
    ha1 = compute_ha1("SHA-256", "Mufasa", RFC7616["realm"], "Circle of Life")
    args = {k: v for k, v in RFC7616.items() if k != "password"}
    assert compute_response("SHA-256", ha1=ha1, **args) == compute_response("SHA-256", **RFC7616)


def test_authorization_for_rfc7616_challenge_reproduces_the_rfc_header():
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        f'nonce="{RFC7616["nonce"]}", opaque="{RFC7616_OPAQUE}"'
    )
    value = authorization_for(
        challenge, "Mufasa", "Circle of Life", "GET", "/dir/index.html", cnonce=RFC7616["cnonce"]
    )
    creds = DigestCredentials.parse(value)
    assert creds.response == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert creds.qop == "auth" and creds.nc == "00000001" and creds.opaque == RFC7616_OPAQUE
    assert creds.algorithm == "SHA-256"


# -- grammar ---------------------------------------------------------------------------------


def test_parse_handles_case_escapes_tokens_and_whitespace():
    scheme, params = parse_auth_params(
        'Digest  REALM = "a \\"quoted\\" realm\\\\" ,Nonce="n,1",algorithm=MD5 , qop="auth"'
    )
    assert scheme == "Digest"
    assert params == {"realm": 'a "quoted" realm\\', "nonce": "n,1", "algorithm": "MD5", "qop": "auth"}


def test_challenge_round_trip():
    c = DigestChallenge(realm='pbx "lab"', nonce="abc", algorithm="SHA-256", qop=("auth",), stale=True)
    text = str(c)
    assert text == 'Digest realm="pbx \\"lab\\"", nonce="abc", algorithm=SHA-256, qop="auth", stale=true'
    assert DigestChallenge.parse(text) == c


def test_credentials_round_trip():
    creds = DigestCredentials(
        username="alice", realm="lab", nonce="n", uri="sip:lab", response="00ff", algorithm="MD5",
        qop="auth", nc="0000000a", cnonce="c",
    )
    again = DigestCredentials.parse(str(creds))
    assert again == creds and again.nc_value == 10


def test_username_star_extended_notation():
    creds = DigestCredentials.parse(
        "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", nonce=\"n\", uri=\"/\", response=\"ab\""
    )
    assert creds.username == "Jäsøn Doe"


@pytest.mark.parametrize(
    "value, reason",
    [
        ("", "empty authentication header"),
        ('Digest realm="abc', "unterminated quoted string in digest parameter 'realm'"),
        ('Digest realm "abc"', "expected '=' after digest parameter 'realm'"),
        ('Digest realm="a", realm="b"', "duplicate digest parameter 'realm'"),
        ('Digest realm="a" nonce="b"', "expected ',' after digest parameter 'realm'"),
        ('Digest realm="a",', "trailing ',' in authentication header"),
        ("Digest realm=", "missing value for digest parameter 'realm'"),
        ('Basic realm="a"', "unsupported authentication scheme 'Basic'"),
        ('Digest realm="a", nonce="b", uri="/", response="ab"', "digest credentials lack username"),
        ('Digest username="u", realm="a", nonce="b", uri="/", response="zz"', "digest response is not hexadecimal"),
        ('Digest username="u", realm="a", nonce="b", uri="/", response="ab", qop=auth', "qop given without nc and cnonce"),
        ('Digest username="u", realm="a", nonce="b", uri="/", response="ab", qop=auth, nc=1, cnonce="c"', "nc must be 8 hex digits"),
    ],
)
def test_malformed_credentials_raise_specific_errors(value, reason):
    with pytest.raises(DigestError) as e:
        DigestCredentials.parse(value)
    assert e.value.reason == reason and e.value.status == 400


def test_pick_challenge_takes_first_supported():
    values = ['Digest realm="r", nonce="n", algorithm=SHA-1', 'Digest realm="r", nonce="n", algorithm=MD5']
    assert pick_challenge(values).algorithm == "MD5"
    with pytest.raises(DigestError, match="no usable digest challenge"):
        pick_challenge(['Basic realm="r"'])


# -- server ----------------------------------------------------------------------------------

USERS = {"alice": Credential(password="wonderland"), "bob": Credential(ha1_md5=compute_ha1("MD5", "bob", "lab", "builder"))}


def make_server(**kw):
    return DigestServer("lab", USERS, secret=b"k" * 32, **kw)


def answer(server, user, password, now=0.0, which=0, method="REGISTER", uri="sip:lab", **kw):
    challenge = server.challenges(now)[which]
    return authorization_for(challenge, user, password, method, uri, **kw)


def test_server_offers_sha256_then_md5_with_one_nonce():
    a, b = (DigestChallenge.parse(v) for v in make_server().challenges(0.0))
    assert (a.algorithm, b.algorithm) == ("SHA-256", "MD5")
    assert a.nonce == b.nonce and a.qop == ("auth",) and a.realm == "lab"


@pytest.mark.parametrize("which", [0, 1])
def test_round_trip_both_algorithms(which):
    server = make_server()
    result = server.verify(answer(server, "alice", "wonderland", which=which), "REGISTER", 1.0)
    assert result.ok and result.username == "alice" and result.status == 200


def test_precomputed_ha1_user_md5_ok_and_sha256_not_available():
    server = make_server()
    assert server.verify(answer(server, "bob", "builder", which=1), "REGISTER", 0.0).ok
    # bob has no SHA-256 HA1: indistinguishable from a wrong password
    assert server.verify(answer(server, "bob", "builder", which=0), "REGISTER", 0.0).outcome is AuthOutcome.REJECTED


def test_wrong_method_fails():
    server = make_server()
    assert not server.verify(answer(server, "alice", "wonderland"), "INVITE", 0.0).ok


def test_stale_nonce_after_lifetime_only_when_response_is_right():
    server = make_server(nonce_lifetime=30)
    good = answer(server, "alice", "wonderland", now=0.0)
    result = server.verify(good, "REGISTER", 30.5)
    assert result.outcome is AuthOutcome.STALE and result.status == 401
    bad = answer(server, "alice", "guess", now=0.0)
    assert server.verify(bad, "REGISTER", 30.5).outcome is AuthOutcome.REJECTED
    assert "stale=true" in server.challenges(31, stale=True)[0]


def test_replayed_nonce_count_is_rejected_and_higher_count_accepted():
    server = make_server()
    challenge = server.challenges(0.0)[0]
    first = authorization_for(challenge, "alice", "wonderland", "REGISTER", "sip:lab", nc=1, cnonce="c")
    assert server.verify(first, "REGISTER", 1.0).ok
    assert server.verify(first, "REGISTER", 2.0).outcome is AuthOutcome.REPLAY
    second = authorization_for(challenge, "alice", "wonderland", "REGISTER", "sip:lab", nc=2, cnonce="c")
    assert server.verify(second, "REGISTER", 3.0).ok


def test_tampered_nonce_is_invalid():
    server = make_server()
    challenge = DigestChallenge.parse(server.challenges(0.0)[0])
    raw = bytearray(base64.urlsafe_b64decode(challenge.nonce + "="))
    raw[0] ^= 1  # move the timestamp: the HMAC no longer matches
    challenge.nonce = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    value = authorization_for(challenge, "alice", "wonderland", "REGISTER", "sip:lab")
    result = server.verify(value, "REGISTER", 0.0)
    assert result.outcome is AuthOutcome.INVALID_NONCE and result.reason == "nonce failed integrity check"


def test_nonce_from_other_server_secret_is_invalid():
    other = DigestServer("lab", USERS, secret=b"x" * 32)
    value = answer(other, "alice", "wonderland")
    assert make_server().verify(value, "REGISTER", 0.0).outcome is AuthOutcome.INVALID_NONCE


def test_unknown_user_and_wrong_password_are_indistinguishable():
    server = make_server()
    unknown = server.verify(answer(server, "mallory", "wonderland"), "REGISTER", 0.0)
    wrong = server.verify(answer(server, "alice", "wrong"), "REGISTER", 0.0)
    assert (unknown.outcome, unknown.reason, unknown.status) == (wrong.outcome, wrong.reason, wrong.status)
    assert unknown.outcome is AuthOutcome.REJECTED


def test_unknown_user_does_the_same_hashing_work(monkeypatch):
    import labkit.sip.digest as digest

    calls = []
    real = digest._h

    def counting(algorithm, text):
        calls.append(algorithm)
        return real(algorithm, text)

    monkeypatch.setattr(digest, "_h", counting)
    server = make_server()
    unknown_value = answer(server, "mallory", "x")
    wrong_value = answer(server, "alice", "x")
    calls.clear()
    server.verify(unknown_value, "REGISTER", 0.0)
    unknown_calls = len(calls)
    calls.clear()
    server.verify(wrong_value, "REGISTER", 0.0)
    assert unknown_calls == len(calls) > 0


def test_no_qop_legacy_client_only_when_allowed():
    strict, legacy = make_server(), make_server(allow_no_qop=True)
    for server, ok in ((strict, False), (legacy, True)):
        c = DigestChallenge.parse(server.challenges(0.0)[1])
        c.qop = ()
        value = authorization_for(c, "alice", "wonderland", "REGISTER", "sip:lab")
        assert "qop" not in value
        assert server.verify(value, "REGISTER", 0.0).ok is ok


def test_sess_algorithm_round_trip():
    server = make_server(algorithms=("SHA-256-sess", "MD5-sess"))
    challenges = server.challenges(0.0)
    assert DigestChallenge.parse(challenges[0]).algorithm == "SHA-256-sess"
    for nc, c in enumerate(challenges, start=1):  # one nonce shared by both: counts must grow
        value = authorization_for(c, "alice", "wonderland", "REGISTER", "sip:lab", nc=nc)
        assert server.verify(value, "REGISTER", 0.0).ok


def test_auth_int_covers_the_body():
    server = make_server(qop=("auth-int",))
    c = server.challenges(0.0)[0]
    value = authorization_for(c, "alice", "wonderland", "MESSAGE", "sip:lab", body=b"hello")
    assert server.verify(value, "MESSAGE", 0.0, body=b"hello").ok
    value = authorization_for(c, "alice", "wonderland", "MESSAGE", "sip:lab", body=b"hello", nc=2)
    assert not server.verify(value, "MESSAGE", 0.0, body=b"HELLO").ok


def test_malformed_and_mismatched_credentials_map_to_statuses():
    server = make_server()
    result = server.verify('Digest username="alice"', "REGISTER", 0.0)
    assert result.outcome is AuthOutcome.MALFORMED and result.status == 400
    assert result.reason == "digest credentials lack realm"
    value = answer(server, "alice", "wonderland", uri="sip:other")
    assert server.verify(value, "REGISTER", 0.0, request_uri="sip:lab").reason == "digest uri does not match Request-URI"
    foreign = authorization_for(
        DigestChallenge(realm="elsewhere", nonce=server.make_nonce(0)), "alice", "wonderland", "REGISTER", "sip:lab"
    )
    assert server.verify(foreign, "REGISTER", 0.0).outcome is AuthOutcome.REJECTED


def test_nonce_counts_bounded_and_forgotten_nonces_become_stale():
    server = make_server(max_tracked_nonces=2)
    values = []
    for t in (0.0, 1.0, 2.0):
        values.append(answer(server, "alice", "wonderland", now=t))
    for t, v in zip((0.0, 1.0, 2.0), values):
        assert server.verify(v, "REGISTER", t + 0.1).ok
    assert len(server.nonce_counts) == 2
    # the first nonce was forgotten: its replay is not accepted, the client must refresh
    assert server.verify(values[0], "REGISTER", 3.0).outcome is AuthOutcome.STALE
    assert server.verify(values[2], "REGISTER", 3.0).outcome is AuthOutcome.REPLAY


def test_nonce_counts_expire_old_entries():
    counts = NonceCounts(10)
    assert counts.check_and_update("a", 0.0, 1)
    assert counts.check_and_update("b", 50.0, 1)
    counts.expire(older_than=10.0)
    assert len(counts) == 1


# -- brute-force ban -------------------------------------------------------------------------


def test_ban_after_failures_in_window_and_unban_later():
    ban = FailureBan(max_failures=3, window=10.0, ban_time=60.0)
    assert ban.failure("192.0.2.1", 0.0) == []
    assert ban.failure("192.0.2.1", 4.0) == []
    events = ban.failure("192.0.2.1", 8.0)
    assert [(e.kind, e.source, e.until, e.failures) for e in events] == [("banned", "192.0.2.1", 68.0, 3)]
    assert ban.is_banned("192.0.2.1", 30.0) and not ban.is_banned("192.0.2.2", 30.0)
    assert ban.next_deadline() == 68.0
    assert ban.handle_timer(67.9) == []
    events = ban.handle_timer(68.0)
    assert [(e.kind, e.source) for e in events] == [("unbanned", "192.0.2.1")]
    assert not ban.is_banned("192.0.2.1", 68.0) and ban.next_deadline() is None


def test_failures_outside_window_do_not_ban():
    ban = FailureBan(max_failures=3, window=10.0, ban_time=60.0)
    for t in (0.0, 6.0, 12.0, 18.0, 24.0):
        assert ban.failure("192.0.2.1", t) == []
    assert not ban.is_banned("192.0.2.1", 25.0)


def test_success_resets_failures_and_state_is_bounded():
    ban = FailureBan(max_failures=2, window=10.0, ban_time=5.0, max_sources=3)
    ban.failure("a", 0.0)
    ban.success("a")
    assert ban.failure("a", 1.0) == []
    for source in "bcde":
        ban.failure(source, 2.0)
    assert len(ban._failures) == 3
    with pytest.raises(ValueError):
        FailureBan(max_failures=0)


def test_ban_driven_by_server_results():
    server, ban = make_server(), FailureBan(max_failures=2, window=60, ban_time=60)
    events = []
    for t in (0.0, 1.0):
        result = server.verify(answer(server, "alice", "guess", now=t), "REGISTER", t)
        if result.counts_as_failure:
            events += ban.failure("198.51.100.7", t)
    assert [e.kind for e in events] == ["banned"]


# -- our UAC's client ------------------------------------------------------------------------


def test_digest_client_answers_then_reuses_nonce_with_growing_nc():
    from labkit.sip.digest import DigestClient

    server, client = make_server(), DigestClient("alice", "wonderland")
    assert client.authorize("REGISTER", "sip:lab") is None
    first = client.answer(server.challenges(0.0), "REGISTER", "sip:lab")
    assert DigestCredentials.parse(first).algorithm == "SHA-256"
    assert server.verify(first, "REGISTER", 1.0).ok
    refresh = client.authorize("REGISTER", "sip:lab")  # pre-emptive, nc=2
    assert DigestCredentials.parse(refresh).nc == "00000002"
    assert server.verify(refresh, "REGISTER", 60.0).ok
    assert server.verify(client.authorize("REGISTER", "sip:lab"), "REGISTER", 400.0).stale


def test_digest_client_with_md5_ha1_only_picks_md5():
    from labkit.sip.digest import DigestClient

    server = make_server()
    client = DigestClient("bob", ha1={"md5": compute_ha1("MD5", "bob", "lab", "builder")})
    value = client.answer(server.challenges(0.0), "REGISTER", "sip:lab")
    assert DigestCredentials.parse(value).algorithm == "MD5" and server.verify(value, "REGISTER", 0.0).ok
    with pytest.raises(DigestError, match="unsupported authentication scheme 'Basic'"):
        client.answer(['Basic realm="x"'], "REGISTER", "sip:lab")


# -- robustness: anything a peer sends gives a DigestError or a verdict, never a crash --------

from hypothesis import given, settings, strategies as st  # noqa: E402

HEADERISH = st.text(alphabet='Digest usernamrlcoqp=",\\ \t*\'%8abcdef0123456789-', max_size=120)


@settings(max_examples=300, deadline=None)
@given(HEADERISH)
def test_fuzz_parsers_raise_only_digest_error(value):
    for parser in (DigestCredentials.parse, DigestChallenge.parse):
        try:
            parser(value)
        except DigestError as e:
            assert e.status == 400 and e.reason


@settings(max_examples=200, deadline=None)
@given(HEADERISH)
def test_fuzz_verify_always_returns_a_verdict(value):
    result = make_server().verify(value, "REGISTER", 0.0)
    assert not result.ok and result.status in (400, 401)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
        max_size=6,
    )
)
def test_format_then_parse_round_trips_any_quoted_values(params):
    from labkit.sip.digest import format_auth_params

    value = format_auth_params("Digest", [(k, v, True) for k, v in params.items()])
    assert parse_auth_params(value) == ("Digest", params)


def test_request_uri_check_uses_sip_uri_equivalence():
    server = make_server()
    value = answer(server, "alice", "wonderland", uri="sip:LAB.example;transport=udp")
    assert server.verify(value, "REGISTER", 0.0, request_uri="sip:lab.example;transport=UDP").ok
    value = answer(server, "alice", "wonderland", uri="not a uri")
    result = server.verify(value, "REGISTER", 0.0, request_uri="sip:lab.example")
    assert result.status == 400 and result.reason == "digest uri does not match Request-URI"


@pytest.mark.parametrize("which", [0, 1])
def test_server_accepts_answers_from_an_independent_client(which):
    """requests' HTTPDigestAuth (a separate implementation of RFC 7616) as the client."""
    requests_auth = pytest.importorskip("requests.auth")
    server = make_server()
    challenge = DigestChallenge.parse(server.challenges(0.0)[which])
    client = requests_auth.HTTPDigestAuth("alice", "wonderland")
    client.init_per_thread_state()
    client._thread_local.chal = {"realm": challenge.realm, "nonce": challenge.nonce,
                                 "algorithm": challenge.algorithm, "qop": ",".join(challenge.qop)}
    value = client.build_digest_header("GET", "http://lab.example/dir/index.html")
    result = server.verify(value, "GET", 1.0, request_uri="/dir/index.html")
    assert result.ok, result.reason
    assert not server.verify(value.replace('username="alice"', 'username="alicf"'), "GET", 1.0).ok


def test_usual_form_fast_path_agrees_with_the_full_parser_on_mutated_headers():
    """parse_auth_params reads the usual form in one pattern pass and hands everything else to
    the full parser: wherever the fast path answers, the full parser gives the same answer."""
    import random

    from labkit.sip.digest import _parse_auth_params, _parse_usual

    seeds = [
        'Digest username="100", realm="labkit", nonce="AAAAAAAPQkAzqswhZfZyrWH4wYPDQ5REb1Q4nhK_M7w", '
        'uri="sip:101@127.0.0.1:5060", response="d997ddbd06dfea0034652c9b24779567", algorithm=MD5, '
        'cnonce="C2CiivrIxOuJ+Sk1ig1KcA", qop=auth, nc=00000001',
        'Digest realm="labkit", nonce="abc", algorithm=SHA-256, qop="auth,auth-int", stale=true',
        'Digest realm="a\\"b", nonce="", opaque=x',
    ]
    alphabet = ['"', "\\", ",", " ", "=", "\t", "\r\n", "a", "Z", "-", ":", "é", ", ", "==", '""']
    rng = random.Random(5)
    answered = 0
    for _ in range(30000):
        text = rng.choice(seeds)
        for _ in range(rng.randint(0, 3)):
            i = rng.randrange(len(text) + 1)
            j = min(len(text), i + rng.randint(0, 3))
            text = text[:i] + rng.choice(alphabet) * rng.randint(0, 2) + text[j:]
        fast = _parse_usual(text)
        if fast is None:
            continue
        answered += 1
        assert fast == _parse_auth_params(text), text
    assert answered > 3000     # the fast path does answer the usual headers
    assert _parse_usual('Digest realm="x", nonce="y", ') is None       # trailing ',' is an error
    assert _parse_usual('Digest realm="a\\"b"') is None                # escapes: the full parser


def test_challenges_are_the_challenge_objects_written_out_with_a_fresh_nonce_each():
    server = DigestServer('lab"kit', {}, algorithms=("SHA-256", "MD5"))
    for stale in (False, True, False):
        values = server.challenges(1000.0, stale=stale)
        nonce = DigestChallenge.parse(values[0]).nonce
        assert values == [str(DigestChallenge(realm='lab"kit', nonce=nonce, algorithm=a, qop=("auth",), stale=stale))
                          for a in ("SHA-256", "MD5")]
        assert server.nonce_issued_at(nonce) == 1000.0
    assert server.challenges(1000.0) != server.challenges(1000.0)     # a new nonce every time
    server.realm, server.algorithms = "other", ("MD5",)                # settings changed later: followed
    assert [DigestChallenge.parse(v).realm for v in server.challenges(1000.0)] == ["other"]
