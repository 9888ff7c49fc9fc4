//! Parse and lint never panic: random bytes, Dockerfile-flavoured noise,
//! mutated library files and huge lines. (cargo-fuzz covers the same in
//! `fuzz/` where a nightly toolchain is available.)

use corral_dockerfiles::{lint::lint_bytes, parse_bytes};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "USER ",
    "EXPOSE ",
    "WORKDIR ",
    "\\\n",
    "`\n",
    "\n",
    "\r\n",
    " ",
    "\t",
    "#",
    "# escape=`\n",
    "<<EOF",
    "<<-'E'",
    "EOF\n",
    "\tE\n",
    "--mount=type=cache,target=/x ",
    "--from=",
    "--platform=$X ",
    "${",
    "}",
    "${A:-",
    "${A:?}",
    "$",
    "\"",
    "'",
    "[",
    "]",
    "\"a\",",
    "=",
    ":",
    "@sha256:",
    "AS ",
    "quay.io/x/y:1",
    "dnf install x",
    " && ",
    "\u{feff}",
    "é",
    "\u{0}",
    "NONE",
    "CMD [\"x\"]",
];

fn check(input: &[u8]) {
    if let Ok(df) = parse_bytes(input) {
        for ins in &df.instructions {
            assert!(ins.span.start <= ins.span.end && ins.span.end <= input.len());
            for f in &ins.flags {
                assert!(f.span.end <= input.len());
            }
        }
    }
    let _ = lint_bytes(input);
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&bytes);
    }
}

#[test]
fn dockerfile_flavoured_noise() {
    let mut rng = Rng(42);
    for _ in 0..4000 {
        let mut s = String::new();
        for _ in 0..rng.below(40) {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        check(s.as_bytes());
    }
}

#[test]
fn mutated_library_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dockerfiles");
    let files: Vec<Vec<u8>> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "Dockerfile")
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(!files.is_empty());
    let mut rng = Rng(7);
    for _ in 0..3000 {
        let mut f = files[rng.below(files.len())].clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(f.len() + 1);
            match rng.below(5) {
                0 if at < f.len() => {
                    f.remove(at);
                }
                1 => f.insert(at, rng.next() as u8),
                2 => {
                    let p = PIECES[rng.below(PIECES.len())].as_bytes();
                    f.splice(at..at, p.iter().copied());
                }
                3 if at < f.len() => f.truncate(at),
                _ => {
                    let from = rng.below(f.len());
                    let to = (from + rng.below(200)).min(f.len());
                    let chunk = f[from..to].to_vec();
                    f.splice(at..at, chunk);
                }
            }
        }
        check(&f);
    }
}

#[test]
fn huge_and_degenerate_inputs() {
    check(b"");
    check(&[0xff; 64]);
    check(format!("RUN {}\n", "a".repeat(1 << 20)).as_bytes());
    check(format!("RUN a \\\n{}", "\\\n".repeat(100_000)).as_bytes());
    check("LABEL a=\"".repeat(10_000).as_bytes());
    check(format!("RUN <<EOF\n{}", "x\n".repeat(100_000)).as_bytes());
    check(format!("FROM x:${{{}}}\n", "A:-${".repeat(5_000)).as_bytes());
    check("\n".repeat(200_000).as_bytes());
}
