//! A producer thread writes a trace as numbered chunks and sends them over a
//! channel; the consumer (standing in for an HTTP response, a SQL result of
//! `chunk_id, chunk_data` rows, or a queue) writes them out in order. No
//! async runtime is involved.
//!
//! ```sh
//! cargo run --example chunks_over_channel [OUT_FILE]
//! ```

use std::io::Write;
use std::sync::mpsc;

use perfetto_trace_writer::{ChunkedWriter, Result, TraceWriter};

fn produce(tx: mpsc::SyncSender<(u64, Vec<u8>)>) -> Result<()> {
    let mut w = ChunkedWriter::new(16 * 1024);
    let p = w.process("service", Some(4242), "service", &[])?;
    let t = w.thread(p, "main", Some(4242), "main")?;
    let send = |w: &mut ChunkedWriter| {
        while let Some(chunk) = w.take_chunk() {
            // A closed channel means the consumer went away: stop quietly.
            let _ = tx.send((chunk.id, chunk.data));
        }
    };
    for i in 0..20_000u64 {
        w.complete_span(
            t,
            i * 1_000,
            i * 1_000 + 600,
            "request",
            "http",
            file!(),
            line!(),
        )?;
        send(&mut w);
    }
    for chunk in w.finish_chunks()? {
        let _ = tx.send((chunk.id, chunk.data));
    }
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("chunked.pftrace"), Into::into);
    // A bounded channel: the producer waits when the consumer falls behind,
    // so memory stays bounded too.
    let (tx, rx) = mpsc::sync_channel(4);
    let producer = std::thread::spawn(move || produce(tx));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut expected_id = 0;
    for (id, data) in rx {
        assert_eq!(id, expected_id, "chunks arrive in order");
        file.write_all(&data)?;
        expected_id += 1;
    }
    file.flush()?;
    producer.join().map_err(|_| "producer panicked")??;
    println!("{expected_id} chunks written to {}", path.display());
    Ok(())
}
