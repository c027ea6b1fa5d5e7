"""
C{ponte-admin}: the sysadmin's command line for the gateway's state
directory: C{init}, C{user add|list|disable|enable|passwd|totp|record},
C{transcript list|show} and C{problems list|show}.

It works on the state directory directly (the gateway may be running: the
database is shared safely through SQLite's locking).
"""

import argparse
import contextlib
import getpass
import json
import os
import secrets
import sys
import time

from gateway import config as configuration
from gateway import check, passwords, pki, records, schema, totp

DEFAULT_CONFIG = "/etc/ponte/ponte.conf"


class AdminError(Exception):
    """A command cannot be done; the message says why in one line."""


def _state_dir(options) -> tuple[str, str]:
    """The state directory and the organisation name, from the options."""
    if options.state:
        return options.state, "Ponte"
    path = options.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    if path is None:
        raise AdminError("give --state DIR or --config FILE (no /etc/ponte/ponte.conf here)")
    try:
        config = configuration.load(path)
    except configuration.ConfigError as e:
        raise AdminError(str(e)) from e
    return config.state_dir, config.organisation


def _transcript_key_path(options, state: str) -> str:
    """The transcript key file: the configuration's, or the state directory's."""
    if not options.state:
        path = options.config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
        if path is not None:
            try:
                return configuration.load(path).transcript_key_path
            except configuration.ConfigError as e:
                raise AdminError(str(e)) from e
    return os.path.join(state, "transcripts.key")


@contextlib.contextmanager
def _database(state: str):
    """A cursor on the state directory's database (migrated), closed afterwards."""
    path = os.path.join(state, "ponte.sqlite3")
    if not os.path.isdir(state):
        raise AdminError(f"state directory {state} does not exist: run `ponte-admin init` first")
    connection = records.open_database(path)
    try:
        schema.migrate(connection)
        yield connection.cursor()
    finally:
        connection.close()


def _new_operator(
    name: str, display_name: str, password: str, admin: bool, group: str = "", temporary: bool = False,
    record: bool = False,
) -> records.Operator:
    """
    An enabled operator account with a freshly hashed password; a
    C{temporary} one must be changed at the first login; with C{record},
    every session of theirs is recorded.
    """
    return records.Operator(
        name, display_name, passwords.hash_password(password), admin, False, time.time(), group, temporary,
        must_record=record,
    )


def _read_password(options, prompt_twice: bool) -> str:
    if options.password_file:
        try:
            with open(options.password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as e:
            raise AdminError(f"{options.password_file}: {e.strerror}") from e
    else:
        if not sys.stdin.isatty():
            raise AdminError("no terminal to ask for the password: use --password-file F")
        password = getpass.getpass("Password: ")
        if prompt_twice and getpass.getpass("Again: ") != password:
            raise AdminError("the two passwords differ")
    try:
        passwords.check_new_password(password)
    except ValueError as e:
        raise AdminError(str(e)) from e
    return password


def cmd_init(options, out) -> None:
    """Create the state directory, database, keys and the first admin."""
    state, organisation = _state_dir(options)
    os.makedirs(state, mode=0o700, exist_ok=True)
    layout = pki.Layout(os.path.join(state, "tls"))
    existing = [p for p in layout.all_files() if os.path.exists(p)]
    if existing and not options.force:
        raise AdminError(
            f"keys exist already in {layout.directory} (e.g. {existing[0]}): "
            "not replaced; use --force to replace them"
        )
    written = pki.initialise(layout, organisation)
    out.write(f"wrote {len(written)} keys and certificates to {layout.directory}\n")
    key_path = _transcript_key_path(options, state)
    try:
        key, made = records.TranscriptKey.load_or_create(key_path)
    except records.TranscriptKeyError as e:
        raise AdminError(str(e)) from e
    # Never replaced, even with --force: the transcripts sealed with it would be lost.
    out.write(f"{'made' if made else 'kept'} the transcript key {key_path} (id {key.key_id})\n")
    with _database(state) as cursor:
        if records.list_operators(cursor):
            out.write("operators exist already: no first admin made\n")
            return
        password = secrets.token_urlsafe(15)
        records.add_operator(
            cursor, _new_operator(options.admin_name, options.admin_name, password, True, temporary=True))
    out.write(
        f"first admin account: {options.admin_name}\n"
        f"its password (shown once; the first login asks for a new one): {password}\n"
    )


def cmd_user_add(options, out) -> None:
    """Add an operator."""
    state, _ = _state_dir(options)
    display_name = options.display_name or options.name
    if not 1 <= len(display_name) <= 64:
        # It is the common name of the operator's certificates.
        raise AdminError("the display name must have 1 to 64 characters")
    password = _read_password(options, prompt_twice=True)
    operator = _new_operator(
        options.name, display_name, password, options.admin, options.group, options.temporary, options.record
    )
    try:
        with _database(state) as cursor:
            records.add_operator(cursor, operator)
    except records.DuplicateOperator as e:
        raise AdminError(str(e)) from e
    out.write(f"added operator {options.name}\n")


def cmd_user_list(options, out) -> None:
    """List operators."""
    state, _ = _state_dir(options)
    with _database(state) as cursor:
        operators = records.list_operators(cursor)
    out.write(
        f"{'username':<20} {'display name':<30} {'admin':<5} {'status':<8} {'totp':<4} {'rec':<3} {'created':<10} group\n"
    )
    for op in operators:
        created = time.strftime("%Y-%m-%d", time.gmtime(op.created_at))
        status = "disabled" if op.disabled else "change" if op.must_change_password else "active"
        admin = "yes" if op.is_admin else "no"
        second = "yes" if op.has_totp else "no"
        record = "yes" if op.must_record else "no"
        out.write(
            f"{op.username:<20} {op.display_name:<30} {admin:<5} {status:<8} {second:<4} {record:<3} {created:<10} "
            f"{op.group or '-'}\n"
        )
    out.write("(status \"change\": the next login must choose a new password; rec: every session is recorded)\n")


def _update(options, out, message, **changes) -> None:
    state, _ = _state_dir(options)
    try:
        with _database(state) as cursor:
            records.update_operator(cursor, options.name, **changes)
    except records.NoSuchOperator as e:
        raise AdminError(str(e)) from e
    out.write(f"{message} {options.name}\n")


def cmd_user_disable(options, out) -> None:
    """Disable an operator (their next login is refused)."""
    _update(options, out, "disabled operator", disabled=True)


def cmd_user_enable(options, out) -> None:
    """Enable a disabled operator."""
    _update(options, out, "enabled operator", disabled=False)


def cmd_user_passwd(options, out) -> None:
    """Set an operator's password (temporary: to be changed at the next login)."""
    password = _read_password(options, prompt_twice=True)
    _update(options, out, "changed the password of", password_hash=passwords.hash_password(password),
            must_change_password=options.temporary)


def cmd_user_record(options, out) -> None:
    """Require (or stop requiring) that every session of an operator is recorded."""
    on = options.state_wanted == "on"
    _update(options, out, "every session is now recorded for" if on else "recording is now the choice of",
            must_record=on)


def cmd_user_totp(options, out) -> None:
    """Enrol an operator's authenticator app (or remove it)."""
    state, organisation = _state_dir(options)
    if options.remove:
        _update(options, out, "removed the authenticator of", totp_sealed=None, totp_last_step=0)
        return
    try:
        key, _ = records.TranscriptKey.load_or_create(_transcript_key_path(options, state))
    except records.TranscriptKeyError as e:
        raise AdminError(str(e)) from e
    with _database(state) as cursor:
        operator = records.get_operator(cursor, options.name)
        if operator is None:
            raise AdminError(f"there is no operator called {options.name!r}")
        if operator.has_totp and not options.replace:
            raise AdminError(
                f"{options.name} has an authenticator already; --replace makes a new one (the old one stops working)")
        secret = totp.new_secret()
        records.update_operator(cursor, options.name, totp_sealed=key.seal_secret(options.name, secret),
                                totp_last_step=0)
    out.write(
        f"enrolled an authenticator for {options.name}; from the next login on, they also type its code.\n"
        f"Add it to their authenticator app (shown once, give it to them privately):\n"
        f"  key: {totp.secret_text(secret)}\n"
        f"  or this URI (e.g. as a QR code: qrencode -t ansiutf8 'URI'):\n"
        f"  {totp.provisioning_uri(secret, options.name, organisation)}\n"
    )


def cmd_check(options, out) -> None:
    """Reach the configured gateway as a client would."""
    state, _ = _state_dir(options)
    ca_path = options.ca or os.path.join(state, "tls", "ca.crt")
    try:
        with open(ca_path, "rb") as f:
            ca_pem = f.read()
    except OSError as e:
        raise AdminError(f"{ca_path}: {e.strerror} (give the CA with --ca FILE)") from e
    port = options.port
    if port is None:
        if not options.config:
            raise AdminError("give --port, or --config to read the listen port from")
        try:
            port = check.raw_port(configuration.load(options.config).raw_listen)
        except (check.CheckFailed, configuration.ConfigError) as e:
            raise AdminError(str(e)) from e
    try:
        result = check.run(options.host, port, ca_pem)
    except check.CheckFailed as e:
        raise AdminError(str(e)) from e
    out.write(
        f"ok: {result.gateway!r} at {options.host}:{port} answered Hello over "
        f"{result.tls_version} ({result.cipher}, key exchange {result.group})\n"
    )


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def cmd_transcript_list(options, out) -> None:
    """List the stored transcripts."""
    state, _ = _state_dir(options)
    with _database(state) as cursor:
        rows = records.list_transcripts(cursor)
    out.write(f"{'session':<32}  {'operator':<20} {'uploaded':<19} {'bytes':>9}\n")
    for session_id, operator, uploaded_at, size in rows:
        out.write(f"{session_id:<32}  {operator:<20} {_when(uploaded_at):<19} {size:>9}\n")


def cmd_transcript_show(options, out) -> None:
    """Decrypt and print one session's transcript."""
    state, _ = _state_dir(options)
    with _database(state) as cursor:
        row = records.get_transcript(cursor, options.session)
        session = records.get_session(cursor, options.session)
    if row is None:
        raise AdminError(f"no transcript is stored for session {options.session}")
    try:
        key = records.TranscriptKey.load(_transcript_key_path(options, state))
        document = key.open(row["session_id"], row["nonce"], row["sealed"], row["key_id"])
    except records.TranscriptKeyError as e:
        raise AdminError(str(e)) from e
    transcript = json.loads(document)
    if options.json:
        out.write(json.dumps(transcript, ensure_ascii=False, indent=2) + "\n")
        return
    out.write(f"session {row['session_id']}, operator {row['operator']}, uploaded {_when(row['uploaded_at'])}\n")
    if session is not None:
        out.write(f"created {_when(session['created_at'])}; outcome: {session['outcome'] or '-'}\n")
    lines = [(m.get("sent_at", 0), f"{m.get('author')}: {m.get('text')}") for m in transcript.get("chat", [])]
    lines += [(e.get("at", 0), f"· {e.get('kind')} {e.get('detail') or ''}".rstrip())
              for e in transcript.get("events", [])]
    out.write("\n")
    for at, text in sorted(lines, key=lambda line: line[0]):
        out.write(f"{_when(at)}  {text}\n")
    notes = transcript.get("notes") or ""
    out.write("\nnotes:\n" + notes.rstrip("\n") + "\n" if notes else "\nno notes\n")


def cmd_problems_list(options, out) -> None:
    """List the problem reports."""
    state, _ = _state_dir(options)
    with _database(state) as cursor:
        rows = records.problem_reports(cursor)
    out.write(f"{'#':>5}  {'operator':<20} {'sent':<19} {'from':<39} {'bytes':>9}\n")
    for number, operator, at, address, size in rows:
        out.write(f"{number:>5}  {operator:<20} {_when(at):<19} {address:<39} {size:>9}\n")


def cmd_problems_show(options, out) -> None:
    """Print one problem report's log."""
    state, _ = _state_dir(options)
    with _database(state) as cursor:
        report = records.get_problem_report(cursor, options.number)
    if report is None:
        raise AdminError(f"there is no problem report #{options.number}")
    out.write(f"problem report #{report['id']} from {report['operator']} at {report['address']}, "
              f"{_when(report['at'])}, {report['size']} bytes\n\n")
    text = report["log_text"]
    out.write(text if text.endswith("\n") else text + "\n")


def parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    top = argparse.ArgumentParser(
        prog="ponte-admin",
        description="Manage a Ponte gateway's state directory: keys, certificates, operators, "
        "transcripts and problem reports.",
    )
    where = top.add_mutually_exclusive_group()
    where.add_argument("--config", help=f"gateway configuration (default {DEFAULT_CONFIG})")
    where.add_argument("--state", help="state directory (instead of reading it from --config)")
    commands = top.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="make the state directory, keys and first admin")
    init.add_argument("--force", action="store_true", help="replace existing keys")
    init.add_argument("--admin-name", default="admin", help="first admin's username")
    init.set_defaults(run=cmd_init)

    user = commands.add_parser("user", help="operator accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="add an operator")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="make an administrator")
    add.add_argument("--display-name", help="name shown to customers")
    add.add_argument(
        "--group", default="", help="the operator's group, named in their certificates (default none)"
    )
    add.add_argument("--password-file", help="read the password from this file's first line")
    add.add_argument("--temporary", action="store_true", help="the operator must change the password at the first login")
    add.add_argument("--record", action="store_true", help="the operator's console must record every session")
    add.set_defaults(run=cmd_user_add)
    user.add_parser("list", help="list operators").set_defaults(run=cmd_user_list)
    for name, run, text in (
        ("disable", cmd_user_disable, "disable an operator"),
        ("enable", cmd_user_enable, "enable an operator"),
    ):
        sub = user.add_parser(name, help=text)
        sub.add_argument("name")
        sub.set_defaults(run=run)
    passwd = user.add_parser("passwd", help="set an operator's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-file", help="read the password from this file's first line")
    passwd.add_argument("--temporary", action="store_true", help="the operator must change it at the next login")
    passwd.set_defaults(run=cmd_user_passwd)
    enrol = user.add_parser("totp", help="enrol an operator's authenticator app (TOTP), or remove it")
    enrol.add_argument("name")
    which = enrol.add_mutually_exclusive_group()
    which.add_argument("--replace", action="store_true", help="replace an enrolled authenticator")
    which.add_argument("--remove", action="store_true", help="remove the authenticator: password only again")
    enrol.set_defaults(run=cmd_user_totp)
    record = user.add_parser("record", help="require that every session of an operator is recorded (or not)")
    record.add_argument("name")
    record.add_argument("state_wanted", choices=("on", "off"), metavar="on|off")
    record.set_defaults(run=cmd_user_record)

    transcript = commands.add_parser("transcript", help="sessions' transcripts (stored encrypted)").add_subparsers(
        dest="transcript_command", required=True
    )
    transcript.add_parser("list", help="list the stored transcripts").set_defaults(run=cmd_transcript_list)
    show = transcript.add_parser("show", help="decrypt and print a session's transcript")
    show.add_argument("session", help="the session id (see `transcript list`)")
    show.add_argument("--json", action="store_true", help="print the uploaded JSON document")
    show.set_defaults(run=cmd_transcript_show)

    problems = commands.add_parser("problems", help="operators' problem reports").add_subparsers(
        dest="problems_command", required=True
    )
    problems.add_parser("list", help="list the problem reports").set_defaults(run=cmd_problems_list)
    report = problems.add_parser("show", help="print a problem report's log")
    report.add_argument("number", type=int)
    report.set_defaults(run=cmd_problems_show)

    probe = commands.add_parser("check", help="reach the running gateway as a client would")
    probe.add_argument("--host", default="localhost", help="name or address to dial (default localhost)")
    probe.add_argument("--port", type=int, help="port (default: [listen] raw of --config)")
    probe.add_argument("--ca", help="CA certificate to trust (default: STATE/tls/ca.crt)")
    probe.set_defaults(run=cmd_check)
    return top


def main(argv=None, out=None) -> int:
    """Run C{ponte-admin}; returns the exit status."""
    out = out or sys.stdout
    options = parser().parse_args(argv)
    try:
        options.run(options, out)
    except AdminError as e:
        sys.stderr.write(f"ponte-admin: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
