//! Event keys: the bytes of the string form, errors for misuse, validity
//! across generations of interning, sequence moves and writer kinds.

use perfetto_trace_writer::{
    inspect, ChunkedWriter, Error, Event, Options, StreamingPerfettoWriter, TraceWriter, Writer,
};

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
