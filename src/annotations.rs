//! The wire encoding of what an event may carry besides its name and
//! interned strings: debug annotations, extra counter values, a log line,
//! flows, a correlation id and a callstack's iid, in field-number order around
//! the fields every event has.

use crate::encoding::{
    close, field, open, put_bool, put_double, put_fixed64, put_int, put_str, put_uint,
    track_event_packet_full, EventFields, EventType, NewInterned, PacketHeader,
};
use crate::event::{Arg, Correlation, Event, Value};
use crate::ids::CounterTrack;
use crate::out::Out;
use crate::track_options::CounterSample;

/// An event's counter value written as an integer: a nonzero one (zeros
/// go with the doubles, see [`doubles`]).
fn nonzero_int(v: CounterSample) -> Option<i64> {
    match v {
        CounterSample::Int(v) if v != 0 => Some(v),
        _ => None,
    }
}

/// An event's counter values written as doubles, in writing order: the
/// nonzero doubles, then every zero (a zero integer is exactly 0.0). The
/// trace processor (v58) reads an event's values, integers then doubles, up
/// to the first zero only; zeros last, it reads them all.
fn doubles<'a>(
    counters: &'a [(CounterTrack, CounterSample)],
) -> impl Iterator<Item = (CounterTrack, f64)> + Clone + 'a {
    let as_double = |&(t, v): &(CounterTrack, CounterSample)| match v {
        CounterSample::Int(v) => (t, v as f64),
        CounterSample::Double(v) => (t, v),
    };
    let nonzero = counters
        .iter()
        .filter(|(_, v)| matches!(v, CounterSample::Double(d) if *d != 0.0))
        .map(as_double);
    let zeros = counters
        .iter()
        .filter(|(_, v)| {
            nonzero_int(*v).is_none() && !matches!(v, CounterSample::Double(d) if *d != 0.0)
        })
        .map(as_double);
    nonzero.chain(zeros)
}

/// The fields of one `DebugAnnotation` (its name and value), in field-number
/// order. `next_iid` gives the iids of the names met, in the order of
/// [`for_each_name`](crate::event::for_each_name).
fn put_arg(buf: &mut Out, arg: &Arg<'_>, next_iid: &mut impl FnMut() -> u64) {
    put_uint(buf, field::ARG_NAME_IID, next_iid());
    put_value(buf, &arg.value, next_iid);
}

fn put_value(buf: &mut Out, value: &Value<'_>, next_iid: &mut impl FnMut() -> u64) {
    match *value {
        Value::Bool(v) => put_bool(buf, field::ARG_BOOL, v),
        Value::Uint(v) => put_uint(buf, field::ARG_UINT, v),
        Value::Int(v) => put_int(buf, field::ARG_INT, v),
        Value::Double(v) => put_double(buf, field::ARG_DOUBLE, v),
        Value::Str(v) => put_str(buf, field::ARG_STRING, v),
        Value::Dict(entries) => {
            for entry in entries {
                let e = open(buf, field::ARG_DICT_ENTRIES);
                put_arg(buf, entry, next_iid);
                close(buf, e);
            }
        }
        Value::Array(values) => {
            for v in values {
                let e = open(buf, field::ARG_ARRAY_VALUES);
                put_value(buf, v, next_iid);
                close(buf, e);
            }
        }
    }
}

/// Appends a framed packet holding one `TrackEvent` with what `ev` carries
/// besides its strings: `arg_iids` are the iids of its argument names in
/// the order of [`for_each_name`](crate::event::for_each_name), `body_iid`
/// its log line's body, `correlation_iid` its correlation name,
/// `callstack_iid` its callstack.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rich_event_packet(
    buf: &mut Out,
    header: PacketHeader,
    fields: &EventFields<'_>,
    new: &NewInterned<'_>,
    ev: &Event<'_>,
    arg_iids: &[u64],
    body_iid: Option<u64>,
    correlation_iid: Option<u64>,
    callstack_iid: Option<u64>,
) {
    // The names come back in the order they were interned.
    let mut iids = arg_iids.iter().copied();
    let mut next_iid = || iids.next().unwrap_or(0);
    let (location_iid, kind) = (fields.location_iid, fields.kind);
    track_event_packet_full(
        buf,
        header,
        fields,
        new,
        |buf| {
            for arg in ev.args {
                let a = open(buf, field::EVENT_DEBUG_ANNOTATIONS);
                put_arg(buf, arg, &mut next_iid);
                close(buf, a);
            }
        },
        |buf| {
            // Integer values (12), the log line (21), the name inline (23),
            // the values' tracks (31).
            for &(_, v) in ev.counters {
                if let Some(v) = nonzero_int(v) {
                    put_int(buf, field::EVENT_EXTRA_COUNTER_VALUES, v);
                }
            }
            if let (Some(log), Some(body_iid)) = (ev.log, body_iid) {
                let m = open(buf, field::EVENT_LOG_MESSAGE);
                if location_iid != 0 {
                    put_uint(buf, field::LOG_SOURCE_LOCATION_IID, location_iid);
                }
                put_uint(buf, field::LOG_BODY_IID, body_iid);
                put_uint(buf, field::LOG_PRIO, log.severity as u64);
                close(buf, m);
            }
            // An end carries no name: the reader matches it to its begin.
            if ev.inline_name && kind != EventType::SliceEnd {
                put_str(buf, field::EVENT_NAME, ev.name);
            }
            for &(track, v) in ev.counters {
                if nonzero_int(v).is_some() {
                    let uuid = track.uuid().get();
                    put_uint(buf, field::EVENT_EXTRA_COUNTER_TRACK_UUIDS, uuid);
                }
            }
        },
        |buf| {
            // Floating-point tracks (45), then their values (46): the
            // zeros of either kind last, as doubles (see `as_double`).
            for (track, _) in doubles(ev.counters) {
                let uuid = track.uuid().get();
                put_uint(buf, field::EVENT_EXTRA_DOUBLE_COUNTER_TRACK_UUIDS, uuid);
            }
            for (_, v) in doubles(ev.counters) {
                put_double(buf, field::EVENT_EXTRA_DOUBLE_COUNTER_VALUES, v);
            }
            for &id in ev.flows {
                put_fixed64(buf, field::EVENT_FLOW_IDS, id);
            }
            for &id in ev.terminating_flows {
                put_fixed64(buf, field::EVENT_TERMINATING_FLOW_IDS, id);
            }
            match (ev.correlation, correlation_iid) {
                (Some(Correlation::Id(id)), _) => {
                    put_uint(buf, field::EVENT_CORRELATION_ID, id);
                }
                (_, Some(iid)) => {
                    put_uint(buf, field::EVENT_CORRELATION_ID_STR_IID, iid);
                }
                _ => {}
            }
            if let Some(iid) = callstack_iid {
                put_uint(buf, field::EVENT_CALLSTACK_IID, iid);
            }
        },
    );
}
