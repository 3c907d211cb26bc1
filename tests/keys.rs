//! Event keys: the bytes of the string form, errors for misuse, validity
//! across generations of interning, sequence moves and writer kinds.

use perfetto_trace_writer::inspect::ArgValue;
use perfetto_trace_writer::{
    inspect, Arg, ChunkedWriter, Error, Event, Options, StreamingPerfettoWriter, TraceWriter,
    Value, Writer,
};
use prost::Message;

#[path = "common/tp.rs"]
mod tp;

/// Spans on two threads and an async lane, and instants, each site given
/// as a key (`keyed`) or as its strings: what both forms write.
fn write<W: TraceWriter>(w: &mut W, keyed: bool, rounds: u64) {
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let a = w.thread(p, "a", Some(8), "a").unwrap();
    let b = w.thread(p, "b", Some(9), "b").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let sites = [
        ("query", "sql", "src/db.rs", 10),
        ("parse", "sql", "src/db.rs", 20),
        ("read", "", "", 0),
        ("idle", "sched", "", 3),
    ];
    let keys: Vec<_> = sites
        .iter()
        .map(|&(n, c, f, l)| w.event_key(n, c, f, l).unwrap())
        .collect();
    for r in 0..rounds {
        let t0 = 1_000 + r * 1_000;
        for (i, &(name, category, file, line)) in sites.iter().enumerate() {
            let t = t0 + 100 * i as u64;
            let thread = if i % 2 == 0 { a } else { b };
            if keyed {
                w.span_begin_key(thread, t, keys[i]).unwrap();
                w.async_span_begin_key(lane, i as u64, t, keys[i]).unwrap();
                w.instant_key(thread, t + 10, keys[(i + 1) % 4]).unwrap();
                w.span_end(thread, t + 50).unwrap();
                w.complete_span_key(thread, t + 60, t + 90, keys[i])
                    .unwrap();
            } else {
                w.span_begin(thread, t, name, category, file, line).unwrap();
                w.async_span_begin(lane, i as u64, t, name, category, file, line)
                    .unwrap();
                let (n, c, f, l) = sites[(i + 1) % 4];
                let instant = Event::new(n).category(c).location(f, l);
                w.instant(thread, t + 10, &instant).unwrap();
                w.span_end(thread, t + 50).unwrap();
                w.complete_span(thread, t + 60, t + 90, name, category, file, line)
                    .unwrap();
            }
            w.async_span_end(lane, i as u64, t + 95).unwrap();
        }
    }
    w.finish().unwrap();
}

fn bytes_of(options: Options, keyed: bool, rounds: u64) -> Vec<u8> {
    let mut w = Writer::with_options(options);
    write(&mut w, keyed, rounds);
    w.into_bytes()
}

#[test]
fn keys_write_the_bytes_of_strings_on_every_writer_kind() {
    for compact in [false, true] {
        let options = Options::new().compact(compact);
        let strings = bytes_of(options, false, 20);
        assert_eq!(bytes_of(options, true, 20), strings, "compact {compact}");

        let mut s = StreamingPerfettoWriter::with_options(Vec::new(), options.flush_threshold(100));
        write(&mut s, true, 20);
        assert_eq!(s.into_inner().unwrap(), strings);

        let mut c = ChunkedWriter::with_options(256, options);
        write(&mut c, true, 20);
        let chunks = c.finish_chunks().unwrap();
        assert!(chunks.len() > 1);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        assert_eq!(joined, strings);
    }
    // In compact mode the busy threads moved to sequences of their own,
    // and the keys' events followed them.
    let mut w = Writer::with_options(Options::new().compact(true));
    write(&mut w, true, 20);
    assert!(w.sequence_count() > 1);
}

/// Tables emptied every few strings: each key's cache goes stale again and
/// again, and its events still write what the strings write.
#[test]
fn keys_survive_generations_of_interning() {
    for compact in [false, true] {
        let options = Options::new().compact(compact).intern_limit(3, usize::MAX);
        let strings = bytes_of(options, false, 30);
        let mut w = Writer::with_options(options);
        write(&mut w, true, 30);
        assert!(w.interning_generations() > 10);
        assert_eq!(w.bytes(), strings, "compact {compact}");
        let trace = inspect::decode(w.bytes()).unwrap();
        assert_eq!(trace.slices.len(), 30 * 4 * 4);
        assert!(trace.slices.iter().all(|s| !s.name.is_empty()));
    }
}

#[test]
fn a_key_of_another_writer_is_refused_and_changes_nothing() {
    let mut other = Writer::new();
    let foreign = other.event_key("x", "", "", 0).unwrap();
    let mut w = Writer::new();
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let before = w.bytes().to_vec();
    assert!(matches!(
        w.span_begin_key(t, 10, foreign),
        Err(Error::ForeignKey)
    ));
    assert!(matches!(
        w.complete_span_key(t, 10, 20, foreign),
        Err(Error::ForeignKey)
    ));
    assert!(matches!(
        w.async_span_begin_key(lane, 1, 10, foreign),
        Err(Error::ForeignKey)
    ));
    assert!(matches!(
        w.instant_key(p, 10, foreign),
        Err(Error::ForeignKey)
    ));
    assert!(matches!(
        w.begin_on(t.uuid(), 10, &Event::from_key(foreign)),
        Err(Error::ForeignKey)
    ));
    assert_eq!(w.bytes(), before);
    assert!(w.open_spans().is_empty());
    // Its own key of the same site works.
    let own = w.event_key("x", "", "", 0).unwrap();
    assert_ne!(own, foreign);
    w.span_begin_key(t, 10, own).unwrap();
}

#[test]
fn a_keyed_event_with_strings_of_its_own_is_refused() {
    let mut w = Writer::new();
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let k = w.event_key("x", "", "", 0).unwrap();
    for ev in [
        Event {
            name: "y",
            ..Event::from_key(k)
        },
        Event::from_key(k).category("c"),
        Event::from_key(k).location("f.rs", 1),
    ] {
        assert!(matches!(
            w.span_begin_with(t, 10, &ev),
            Err(Error::KeyAndStrings)
        ));
    }
    assert!(w.open_spans().is_empty());
}

#[test]
fn registering_a_site_again_gives_its_key() {
    let mut w = Writer::new();
    let a = w.event_key("query", "sql", "db.rs", 1).unwrap();
    let b = w.event_key("query", "sql", "db.rs", 2).unwrap();
    assert_ne!(a, b);
    assert_eq!(w.event_key("query", "sql", "db.rs", 1).unwrap(), a);
    assert_eq!(w.key_count(), 2);
    // Registering writes nothing, and interns nothing until used.
    assert!(w.bytes().is_empty());
    assert_eq!(w.interned_count(), 0);
    let long = "x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    assert!(matches!(
        w.event_key(&long, "", "", 0),
        Err(Error::StringTooLong(_))
    ));
}

/// Times that cross quarter-second boundaries (2^28 ns), jump far ahead
/// (up to the largest time accepted) and keys registered after others were
/// first used: both forms write the same bytes, and every slice keeps its
/// times.
#[test]
fn keys_write_the_bytes_of_strings_across_time_jumps_and_late_keys() {
    const LAST: u64 = i64::MAX as u64;
    let times: Vec<u64> = (0..40u64)
        .map(|i| match i {
            0..=9 => (1 << 28) - 50 + 30 * i,
            10..=19 => (5 << 28) + (1 << 27) * i,
            20..=29 => (1 << 55) + (1 << 40) * i,
            _ => LAST - 2_000 + 40 * (i - 30),
        })
        .collect();
    let sites = [
        ("query", "sql", "src/db.rs", 10),
        ("parse", "sql", "src/db.rs", 20),
        ("read", "io", "", 0),
    ];
    let write = |w: &mut Writer, keyed: bool| {
        let p = w.process("svc", Some(7), "service", &[]).unwrap();
        let t = w.thread(p, "main", Some(7), "main").unwrap();
        let lane = w.async_lane(p, "io").unwrap();
        let mut keys = Vec::new();
        for (i, &ts) in times.iter().enumerate() {
            // One more key every few spans, after the first were used.
            if keys.len() < sites.len() && i % 7 == 0 {
                let (n, c, f, l) = sites[keys.len()];
                keys.push(w.event_key(n, c, f, l).unwrap());
            }
            let k = i % keys.len();
            let (name, category, file, line) = sites[k];
            if keyed {
                w.span_begin_key(t, ts, keys[k]).unwrap();
                w.async_span_begin_key(lane, i as u64, ts, keys[k]).unwrap();
            } else {
                w.span_begin(t, ts, name, category, file, line).unwrap();
                w.async_span_begin(lane, i as u64, ts, name, category, file, line)
                    .unwrap();
            }
            w.span_end(t, ts + 20).unwrap();
            w.async_span_end(lane, i as u64, ts + 30).unwrap();
        }
        w.finish().unwrap();
    };
    for compact in [false, true] {
        let options = Options::new().compact(compact);
        let mut strings = Writer::with_options(options);
        write(&mut strings, false);
        let mut keyed = Writer::with_options(options);
        write(&mut keyed, true);
        assert_eq!(keyed.bytes(), strings.bytes(), "compact {compact}");
        let trace = inspect::decode(keyed.bytes()).unwrap();
        let mut begins: Vec<u64> = trace.slices.iter().map(|s| s.ts).collect();
        begins.sort_unstable();
        begins.dedup();
        assert_eq!(begins, times, "compact {compact}");
        assert_eq!(trace.slices.len(), 2 * times.len());
    }
}

/// Argument names of the keys below: `'static`, as the writer needs them
/// to know an argument by its name's address.
const ROWS: &str = "rows";
const TABLE: &str = "table";
const RATIO: &str = "ratio";

/// Instants and begins with arguments on uuid tracks (a thread's, a keyed
/// track's), each site given as a key with its arguments' names, as a key
/// with other names, as a plain key or as its strings (`form`, 0 to 3):
/// what every form writes.
fn write_with_args<W: TraceWriter>(w: &mut W, form: u8, rounds: u64) {
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let span = w
        .keyed_track(t.uuid(), 1, "span", &Default::default())
        .unwrap();
    let sites = [
        ("query done", "info,db", "src/db.rs", 10),
        ("parse", "", "", 0),
        (
            "a name of some length for the packet",
            "warn",
            "src/x.rs",
            3,
        ),
    ];
    let keys: Vec<_> = sites
        .iter()
        .map(|&(n, c, f, l)| match form {
            0 => w.event_key_with_args(n, c, f, l, &[ROWS, TABLE, RATIO]),
            1 => w.event_key_with_args(n, c, f, l, &[TABLE, ROWS]),
            _ => w.event_key(n, c, f, l),
        })
        .collect::<Result<_, _>>()
        .unwrap();
    let long = "x".repeat(200);
    for r in 0..rounds {
        for (i, &(name, category, file, line)) in sites.iter().enumerate() {
            let ts = 1_000 + r * 1_000 + 10 * i as u64;
            let value = if r % 7 == 6 { &long[..] } else { "users" };
            let args = [
                Arg::new(ROWS, Value::Uint(r << (r % 50))),
                Arg::new(TABLE, Value::Str(value)),
                Arg::new(RATIO, Value::Double(0.5)),
            ];
            // Fewer arguments now and then: not the key's names.
            let args = &args[..if r % 5 == 4 { 2 } else { 3 }];
            let track = if i == 1 { span.get() } else { t.uuid().get() };
            let track = perfetto_trace_writer::TrackUuid::from_raw(track);
            // And on the thread as the model keeps it (its own sequence
            // once busy, in compact mode): a begin and an instant.
            let ev = match form {
                3 => Event::new(name).category(category).location(file, line),
                _ => Event::from_key(keys[i]),
            };
            if form < 3 {
                let k = keys[i];
                w.instant_on_key(track, ts, k, args).unwrap();
                w.begin_on_key(track, ts + 1, k, args).unwrap();
                w.instant_on(track, ts + 2, &Event::from_key(k).args(args))
                    .unwrap();
            } else {
                w.instant_on(track, ts, &ev.args(args)).unwrap();
                w.begin_on(track, ts + 1, &ev.args(args)).unwrap();
                w.instant_on(track, ts + 2, &ev.args(args)).unwrap();
            }
            // A thread's begin by the key's own call every other round.
            match (form, r % 2) {
                (0..=2, 1) => w.span_begin_key_args(t, ts + 3, keys[i], args),
                _ => w.span_begin_with(t, ts + 3, &ev.args(args)),
            }
            .unwrap();
            w.instant(t, ts + 4, &ev.args(args)).unwrap();
            w.span_end(t, ts + 4).unwrap();
            w.end_on(track, ts + 5).unwrap();
        }
    }
    w.finish().unwrap();
}

/// Asserts that a scenario, given for each writer kind, writes `expected`
/// on a buffered writer, on a streaming one flushing every 150 bytes and
/// as chunks of 300 bytes joined; returns the buffered writer.
fn assert_every_kind_writes(
    expected: &[u8],
    options: Options,
    what: &str,
    buffered: impl FnOnce(&mut Writer),
    streaming: impl FnOnce(&mut StreamingPerfettoWriter<Vec<u8>>),
    chunked: impl FnOnce(&mut ChunkedWriter),
) -> Writer {
    let mut w = Writer::with_options(options);
    buffered(&mut w);
    assert_eq!(w.bytes(), expected, "buffered, {what}");

    let mut s = StreamingPerfettoWriter::with_options(Vec::new(), options.flush_threshold(150));
    streaming(&mut s);
    assert_eq!(s.into_inner().unwrap(), expected, "streaming, {what}");

    let mut c = ChunkedWriter::with_options(300, options);
    chunked(&mut c);
    let joined: Vec<u8> = c
        .finish_chunks()
        .unwrap()
        .iter()
        .flat_map(|c| c.data.iter().copied())
        .collect();
    assert_eq!(joined, expected, "chunks, {what}");
    w
}

#[test]
fn keys_with_argument_names_write_the_bytes_of_strings() {
    for compact in [false, true] {
        for limit in [usize::MAX, 5] {
            let options = Options::new()
                .compact(compact)
                .intern_limit(limit, usize::MAX);
            let mut s = Writer::with_options(options);
            write_with_args(&mut s, 3, 30);
            let strings = s.into_bytes();
            for form in 0..3 {
                let what = format!("compact {compact}, limit {limit}, form {form}");
                let w = assert_every_kind_writes(
                    &strings,
                    options,
                    &what,
                    |w| write_with_args(w, form, 30),
                    |w| write_with_args(w, form, 30),
                    |w| write_with_args(w, form, 30),
                );
                if limit != usize::MAX {
                    assert!(w.interning_generations() > 10);
                }
            }
            let trace = inspect::decode(&strings).unwrap();
            assert_eq!(trace.slices.len(), 30 * 3 * 5);
            let args = &trace.slices[0].args;
            assert!(args.iter().any(|(k, _)| k == "rows"), "{args:?}");
        }
    }
}

#[test]
fn a_key_with_argument_names_of_another_writer_is_refused_and_changes_nothing() {
    let mut other = Writer::new();
    let foreign = other.event_key_with_args("x", "", "", 0, &[ROWS]).unwrap();
    let mut w = Writer::new();
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    // The same site here: its key and its cache are this writer's.
    let own = w.event_key_with_args("x", "", "", 0, &[ROWS]).unwrap();
    let args = [Arg::new(ROWS, Value::Uint(1))];
    w.instant_on_key(t.uuid(), 5, own, &args).unwrap();
    w.instant_on_key(t.uuid(), 6, own, &args).unwrap();
    let before = w.bytes().to_vec();
    for r in [
        w.instant_on_key(t.uuid(), 10, foreign, &args),
        w.begin_on_key(t.uuid(), 10, foreign, &args),
        w.instant_on(t.uuid(), 10, &Event::from_key(foreign).args(&args)),
        w.begin_on(t.uuid(), 10, &Event::from_key(foreign).args(&args)),
        w.span_begin_key_args(t, 10, foreign, &args),
    ] {
        assert!(matches!(r, Err(Error::ForeignKey)), "{r:?}");
    }
    assert_eq!(w.bytes(), before);
}

#[test]
fn keyed_events_with_argument_names_report_what_their_strings_would() {
    let mut w = Writer::new();
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let k = w.event_key_with_args("x", "c", "f.rs", 1, &[ROWS]).unwrap();
    let args = [Arg::new(ROWS, Value::Uint(1))];
    w.instant_on_key(t.uuid(), 5, k, &args).unwrap();
    w.instant_on_key(t.uuid(), 6, k, &args).unwrap();
    // The thread's own time, which its begins may not go back from.
    w.instant(t, 8, &Event::new("mark")).unwrap();
    let before = w.bytes().to_vec();
    let named = Event::from_key(k).args(&args).category("c");
    assert!(matches!(
        w.instant_on(t.uuid(), 10, &named),
        Err(Error::KeyAndStrings)
    ));
    assert!(matches!(
        w.instant_on_key(t.uuid(), u64::MAX, k, &args),
        Err(Error::TimestampOutOfRange(_))
    ));
    let long = "x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let too_long = [Arg::new(ROWS, Value::Str(&long))];
    assert!(matches!(
        w.begin_on_key(t.uuid(), 10, k, &too_long),
        Err(Error::StringTooLong(_))
    ));
    // A thread's begin by key reports what its `span_begin_with` would.
    assert!(matches!(
        w.span_begin_key_args(t, 10, k, &too_long),
        Err(Error::StringTooLong(_))
    ));
    assert!(matches!(
        w.span_begin_key_args(t, 7, k, &args),
        Err(Error::TimestampBackwards { .. })
    ));
    assert_eq!(w.bytes(), before);
}

#[test]
fn a_site_with_other_argument_names_is_another_key() {
    let mut w = Writer::new();
    let plain = w.event_key("q", "c", "f.rs", 1).unwrap();
    let named = w
        .event_key_with_args("q", "c", "f.rs", 1, &[ROWS, TABLE])
        .unwrap();
    let other = w
        .event_key_with_args("q", "c", "f.rs", 1, &[TABLE, ROWS])
        .unwrap();
    let fewer = w.event_key_with_args("q", "c", "f.rs", 1, &[ROWS]).unwrap();
    let keys = [plain, named, other, fewer];
    for (i, a) in keys.iter().enumerate() {
        assert!(keys[i + 1..].iter().all(|b| a != b), "{keys:?}");
    }
    // Names are compared by their text: "rows" from elsewhere is ROWS.
    let copy: &'static str = String::leak(String::from("rows"));
    assert_eq!(
        w.event_key_with_args("q", "c", "f.rs", 1, &[copy, TABLE])
            .unwrap(),
        named
    );
    assert_eq!(w.event_key("q", "c", "f.rs", 1).unwrap(), plain);
    // Past the scan, through the map: found again too.
    for i in 0..20 {
        w.event_key_with_args("q", "c", "f.rs", 100 + i, &[ROWS])
            .unwrap();
    }
    assert_eq!(
        w.event_key_with_args("q", "c", "f.rs", 1, &[TABLE, ROWS])
            .unwrap(),
        other
    );
    assert_eq!(w.key_count(), 24);
    let long: &'static str = String::leak("x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1));
    assert!(matches!(
        w.event_key_with_args("q", "", "", 0, &[long]),
        Err(Error::StringTooLong(_))
    ));
    assert!(w.bytes().is_empty());
}

/// Events named inline on uuid tracks (a thread's, a keyed track's) and
/// on the model's tracks (a thread, an async lane), each site given as a
/// key with its arguments' names, as a key without names, or as its
/// strings (`form`, 0 to 2), the name varying from event to event, mixed
/// with the key's own name now and then.
fn write_inline<W: TraceWriter>(w: &mut W, form: u8, rounds: u64) {
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let span = w
        .keyed_track(t.uuid(), 1, "span", &Default::default())
        .unwrap();
    let sites = [("loaded", "info,db", "src/db.rs", 10), ("tick", "", "", 0)];
    let keys: Vec<_> = sites
        .iter()
        .map(|&(n, c, f, l)| match form {
            0 => w.event_key_with_args(n, c, f, l, &[ROWS, TABLE]),
            _ => w.event_key(n, c, f, l),
        })
        .collect::<Result<_, _>>()
        .unwrap();
    // Longer than a short packet holds now and then.
    let long = "y".repeat(150);
    for r in 0..rounds {
        for (i, &(name, category, file, line)) in sites.iter().enumerate() {
            let ts = 1_000 + r * 1_000 + 10 * i as u64;
            let text = match r % 9 {
                8 => format!("{long} {r}"),
                _ => format!("{name} {r} rows"),
            };
            let args = [
                Arg::new(ROWS, Value::Uint(r)),
                Arg::new(TABLE, Value::Str("users")),
            ];
            let args = &args[..if r % 4 == 3 { 0 } else { 2 }];
            let track = if i == 1 { span } else { t.uuid() };
            let strings = Event::new(&text)
                .category(category)
                .location(file, line)
                .inline_name()
                .args(args);
            let keyed = Event::from_key_named(keys[i], &text).args(args);
            let ev = if form < 2 { keyed } else { strings };
            match form {
                2 => {
                    w.instant_on(track, ts, &strings).unwrap();
                    w.begin_on(track, ts + 1, &strings).unwrap();
                }
                _ => {
                    w.instant_on_key_named(track, ts, keys[i], &text, args)
                        .unwrap();
                    w.begin_on_key_named(track, ts + 1, keys[i], &text, args)
                        .unwrap();
                }
            }
            w.instant_on(track, ts + 2, &ev).unwrap();
            w.span_begin_with(t, ts + 3, &ev).unwrap();
            w.instant(t, ts + 4, &ev).unwrap();
            w.span_end(t, ts + 4).unwrap();
            w.async_span_begin_with(lane, 1, ts + 4, &ev).unwrap();
            w.async_span_end(lane, 1, ts + 5).unwrap();
            // The site's own name, interned, every third round.
            if r % 3 == 0 {
                let own = Event::new(name).category(category).location(file, line);
                match form {
                    2 => w.instant_on(track, ts + 5, &own.args(args)).unwrap(),
                    _ => w
                        .instant_on(track, ts + 5, &Event::from_key(keys[i]).args(args))
                        .unwrap(),
                }
            }
            w.end_on(track, ts + 5).unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn inline_names_write_the_same_bytes_keyed_or_not_on_every_writer_kind() {
    for compact in [false, true] {
        for limit in [usize::MAX, 5] {
            let options = Options::new()
                .compact(compact)
                .intern_limit(limit, usize::MAX);
            let mut s = Writer::with_options(options);
            write_inline(&mut s, 2, 30);
            let strings = s.into_bytes();
            for form in 0..2 {
                let what = format!("compact {compact}, limit {limit}, form {form}");
                assert_every_kind_writes(
                    &strings,
                    options,
                    &what,
                    |w| write_inline(w, form, 30),
                    |w| write_inline(w, form, 30),
                    |w| write_inline(w, form, 30),
                );
            }
            // Canonical, every name inline but the sites' own.
            let trace = perfetto_trace_writer::protos::Trace::decode(&strings[..]).unwrap();
            assert_eq!(trace.encode_to_vec(), strings);
            let events: Vec<_> = trace
                .packet
                .iter()
                .filter_map(|p| p.track_event.as_ref())
                .collect();
            let inline = events.iter().filter(|e| e.name.is_some()).count();
            assert_eq!(inline, 30 * 2 * 6);
            assert!(events
                .iter()
                .all(|e| e.name.is_none() || e.name_iid.is_none()));
            let interned: Vec<&str> = trace
                .packet
                .iter()
                .filter_map(|p| p.interned_data.as_ref())
                .flat_map(|d| &d.event_names)
                .filter_map(|n| n.name.as_deref())
                .collect();
            assert!(
                interned.iter().all(|n| ["loaded", "tick"].contains(n)),
                "{interned:?}"
            );

            let decoded = inspect::decode(&strings).unwrap();
            assert_eq!(decoded.problems, vec![]);
            let named = |text: &str| decoded.slices.iter().filter(|s| s.name == text).count();
            assert_eq!(named("loaded 4 rows"), 6);
            assert_eq!(named(&format!("{} 17", "y".repeat(150))), 12);
            let slice = decoded
                .slices
                .iter()
                .find(|s| s.name == "loaded 5 rows")
                .unwrap();
            assert_eq!(slice.categories, ["info,db"]);
            assert_eq!(slice.source, Some(("src/db.rs".to_owned(), 10)));
            assert!(slice
                .args
                .iter()
                .any(|(k, v)| k == "rows" && *v == ArgValue::Uint(5)));
            // The trace processor reads the names inline, with no error.
            let sql = "select count(*) from slice where name glob 'loaded * rows';";
            if let Some(rows) = tp::clean_query(&strings, sql) {
                assert_eq!(rows, ["162"], "compact {compact}, limit {limit}");
            }
        }
    }
}

#[test]
fn events_named_inline_report_what_their_strings_would() {
    let mut other = Writer::new();
    let foreign = other.event_key_with_args("x", "", "", 0, &[ROWS]).unwrap();
    let mut w = Writer::new();
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "a", Some(8), "a").unwrap();
    let k = w.event_key_with_args("x", "c", "f.rs", 1, &[ROWS]).unwrap();
    let args = [Arg::new(ROWS, Value::Uint(1))];
    // The key's cache set: what follows would take the short path.
    w.instant_on_key_named(t.uuid(), 5, k, "x 1", &args)
        .unwrap();
    w.instant_on_key_named(t.uuid(), 6, k, "x 2", &args)
        .unwrap();
    let before = w.bytes().to_vec();
    let long = "x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let too_long = [Arg::new(ROWS, Value::Str(&long))];
    for r in [
        w.instant_on_key_named(t.uuid(), 10, k, &long, &args),
        w.begin_on_key_named(t.uuid(), 10, k, "x", &too_long),
        w.instant(t, 10, &Event::from_key_named(k, &long)),
    ] {
        assert!(matches!(r, Err(Error::StringTooLong(_))), "{r:?}");
    }
    for r in [
        w.instant_on_key_named(t.uuid(), 10, foreign, "x 3", &args),
        w.begin_on_key_named(t.uuid(), 10, foreign, "x 3", &args),
        w.instant(t, 10, &Event::from_key_named(foreign, "x 3")),
    ] {
        assert!(matches!(r, Err(Error::ForeignKey)), "{r:?}");
    }
    assert!(matches!(
        w.instant_on_key_named(t.uuid(), u64::MAX, k, "x 3", &args),
        Err(Error::TimestampOutOfRange(_))
    ));
    // A key gives the category and location: an inline name is the only
    // string an event of a key may have.
    for ev in [
        Event::from_key_named(k, "x 3").category("c"),
        Event::from_key_named(k, "x 3").location("f.rs", 1),
    ] {
        assert!(matches!(w.instant(t, 10, &ev), Err(Error::KeyAndStrings)));
        assert!(matches!(
            w.instant_on(t.uuid(), 10, &ev),
            Err(Error::KeyAndStrings)
        ));
    }
    assert_eq!(w.bytes(), before);
    assert!(w.open_spans().is_empty());
}
