//! The floor of an encrypted verify: the cost of the block keystream alone, one core.
//!
//! `cargo run --profile profiling --example keystream [MIB] [ROUNDS]` XORs a buffer of MIB MiB
//! (default 64, reused: in cache as the checker's block buffer is not, so this is a lower
//! bound) with the keystream jetdir applies to every block of an encrypted store: XChaCha20
//! (the `chacha20` crate, its runtime-detected AVX-512 backend on x86-64, AVX2 without it) and AES-256-CTR (`aes`
//! with AES-NI, `ctr`), in 2 MiB pieces as the server's blocks are, each piece with a fresh
//! cipher seeked to its offset as `AssetKey::xor_block` does. Prints, per cipher, the best
//! of ROUNDS (default 5) as GB/s and CPU-seconds per GiB, and the CPU features detected.
use aes_gcm::aead::generic_array::GenericArray;
use std::time::Instant;

const PIECE: usize = 2 << 20;

fn xchacha(buf: &mut [u8], seed: &[u8; 32], nonce: &[u8; 24]) {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    for (i, p) in buf.chunks_mut(PIECE).enumerate() {
        let mut c = chacha20::XChaCha20::new(&(*seed).into(), &(*nonce).into());
        c.seek((i * PIECE) as u64);
        c.apply_keystream(p);
    }
}

fn aes_ctr(buf: &mut [u8], seed: &[u8; 32], nonce: &[u8; 16]) {
    use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    for (i, p) in buf.chunks_mut(PIECE).enumerate() {
        let mut c = ctr::Ctr128BE::<aes::Aes256>::new(
            GenericArray::from_slice(seed),
            GenericArray::from_slice(nonce),
        );
        c.seek((i * PIECE) as u64);
        c.apply_keystream(p);
    }
}

fn best(rounds: usize, buf: &mut [u8], f: &dyn Fn(&mut [u8])) -> f64 {
    f(buf); // warm-up
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f(buf);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut buf: Vec<u8> = (0..mib << 20).map(|i| (i * 31 % 251) as u8).collect();
    let seed = [7u8; 32];
    #[cfg(target_arch = "x86_64")]
    println!(
        "cpu: avx2 {}, avx512f {}, aes-ni {}",
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("avx512f"),
        std::arch::is_x86_feature_detected!("aes"),
    );
    let gib = (mib as f64) / 1024.0;
    type Xor<'a> = &'a dyn Fn(&mut [u8]);
    let rows: [(&str, Xor); 2] = [
        ("xchacha20 (chacha20 0.10)", &|b| {
            xchacha(b, &seed, &[9u8; 24])
        }),
        ("aes-256-ctr (aes 0.8, ctr 0.9)", &|b| {
            aes_ctr(b, &seed, &[9u8; 16])
        }),
    ];
    for (name, f) in rows {
        let s = best(rounds, &mut buf, f);
        println!(
            "{name:32} {:6.2} GB/s  {:5.3} CPU-s per GiB (one core, {mib} MiB, best of {rounds})",
            (mib << 20) as f64 / s / 1e9,
            s / gib
        );
    }
}
