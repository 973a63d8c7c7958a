//! Greedy and beam-search decoding for encoder–decoder models, with the semantics of
//! transformers' `generate()` for `MarianMTModel` (generation/utils.py: `_sample` without
//! sampling, and the vectorised `_beam_search` with its helpers `_get_top_k_continuations`,
//! `_get_running_beams_for_next_iteration`, `_update_finished_beams`,
//! `_check_early_stop_heuristic`), and of the logits processors a Marian generation config
//! turns on (`NoRepeatNGramLogitsProcessor`, `NoBadWordsLogitsProcessor` for the pad token,
//! `MinNewTokensLengthLogitsProcessor`, `ForcedEOSTokenLogitsProcessor`).
//!
//! The decoding loop talks to the model only through [`StepDecoder`], one token per row per
//! step, so it can drop finished rows and reorder beams without knowing about tensors.
//!
//! Differences from the reference, all deliberate:
//! - Each sequence has its own maximum length (polybrief derives it from the source length);
//!   with equal maxima the results are those of `generate(max_new_tokens=...)`.
//! - Finished sequences (greedy) and finished sentences (beam) leave the batch at once instead
//!   of being carried along padded; rows are independent, so this changes no output.
//! - An optional [`RepetitionGuard`] (off in `GenerationParams::for_marian`, on for real
//!   translation) forbids the token that would repeat the same unit of 1..=`max_period` tokens
//!   more often in a row than allowed. It exists for the known opus-mt failure of looping on one
//!   phrase until the maximum length ("the flood, the flood, the flood, ..."). Unlike
//!   `no_repeat_ngram_size` it leaves ordinary repeated words and phrases alone; it only cuts
//!   runs of back-to-back copies.

use rayon::prelude::*;

use crate::models::marian::{Config, DecoderCache, MarianMTModel};
use crate::models::GenerateError;

/// A model that extends a batch of hypotheses one token at a time.
pub trait StepDecoder {
    /// Number of rows (hypotheses) the decoder currently holds.
    fn rows(&self) -> usize;

    /// Feeds one token per row and returns the next-token logits, row-major, `rows × vocab`.
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError>;

    /// Keeps rows `rows` (indices into the current rows, repeats allowed), in that order.
    /// `same_sources` promises that each kept row reads the same source as the row now at its
    /// position (a reordering of beams within each sentence), which lets the model skip moving
    /// per-source state.
    fn select_rows(&mut self, rows: &[u32], same_sources: bool) -> Result<(), GenerateError>;
}

/// [`StepDecoder`] over a [`MarianMTModel`] and its decoder cache.
pub struct MarianDecoding<'a> {
    model: &'a MarianMTModel,
    cache: DecoderCache,
}

impl<'a> MarianDecoding<'a> {
    /// Starts decoding with one row per source sentence of `cache`.
    pub fn new(model: &'a MarianMTModel, cache: DecoderCache) -> Self {
        Self { model, cache }
    }
}

impl StepDecoder for MarianDecoding<'_> {
    fn rows(&self) -> usize {
        self.cache.rows()
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        Ok(self.model.decode_step_values(tokens, &mut self.cache)?)
    }

    fn select_rows(&mut self, rows: &[u32], same_sources: bool) -> Result<(), GenerateError> {
        if same_sources {
            self.cache.reorder_within_sources(rows)?;
        } else {
            self.cache.select_rows(rows)?;
        }
        Ok(())
    }
}

/// Forbids a token when it would make the output end with more than the allowed number of
/// back-to-back copies of one unit of `1..=max_period` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepetitionGuard {
    /// Longest repeating unit checked, in tokens.
    pub max_period: usize,
    /// Copies allowed in a row of a single token ("very very very" is three).
    pub max_token_repeats: usize,
    /// Copies allowed in a row of a unit of two or more tokens.
    pub max_phrase_repeats: usize,
}

impl Default for RepetitionGuard {
    /// Generous for real text (numbers such as "1,000,000,000" repeat one piece three times),
    /// strict for the loops opus-mt falls into: a phrase may not follow itself twice.
    fn default() -> Self {
        Self {
            max_period: 16,
            max_token_repeats: 3,
            max_phrase_repeats: 2,
        }
    }
}

impl RepetitionGuard {
    /// Tokens that must not come next after `generated` (which excludes the start token).
    pub fn banned_next(&self, generated: &[u32]) -> Vec<u32> {
        let n = generated.len();
        let mut banned = Vec::new();
        for period in 1..=self.max_period {
            let copies = if period == 1 {
                self.max_token_repeats
            } else {
                self.max_phrase_repeats
            };
            // Appending x forms copies+1 copies iff the last (copies+1)*period - 1 tokens are
            // period-periodic and x equals the token one period back.
            let window = (copies + 1) * period - 1;
            if copies == 0 || window > n || period > n {
                continue;
            }
            let tail = &generated[n - window..];
            if (0..window - period).all(|i| tail[i] == tail[i + period]) {
                let token = generated[n - period];
                if !banned.contains(&token) {
                    banned.push(token);
                }
            }
        }
        banned
    }
}

/// How to decode.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationParams {
    /// 1 for greedy search.
    pub num_beams: usize,
    /// Finished beams are ranked by `sum of log-probs / generated_len^length_penalty`.
    pub length_penalty: f64,
    /// Stop a sentence's beam search as soon as `num_beams` hypotheses are finished.
    pub early_stopping: bool,
    /// Forbid any n-gram of this size from occurring twice (0: off).
    pub no_repeat_ngram_size: usize,
    /// EOS is forbidden before this many tokens are generated.
    pub min_new_tokens: usize,
    /// EOS is forbidden before each sentence's own maximum length, so every sentence runs
    /// to exactly its `max_new_tokens` (with `forced_eos_token_id`, EOS is its last token).
    /// Only benchmarks set it: random weights then decode the lengths a real model would.
    pub exact_length: bool,
    pub repetition_guard: Option<RepetitionGuard>,
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    /// Forced as the last token when a sequence reaches its maximum length.
    pub forced_eos_token_id: Option<u32>,
    /// Never generated (Marian: the pad token, which is also the decoder start token).
    pub banned_token_ids: Vec<u32>,
}

impl GenerationParams {
    /// The reference's settings for a Marian checkpoint: greedy, length penalty 1, early
    /// stopping, pad never generated, forced EOS at the maximum length, no repetition guard.
    pub fn for_marian(cfg: &Config) -> Self {
        Self {
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: true,
            no_repeat_ngram_size: 0,
            min_new_tokens: 0,
            exact_length: false,
            repetition_guard: None,
            decoder_start_token_id: cfg.decoder_start_token_id,
            eos_token_id: cfg.eos_id(),
            forced_eos_token_id: cfg.forced_eos_id(),
            banned_token_ids: vec![cfg.pad_token_id],
        }
    }
}

/// Generates for every row of `decoder` (one row per source sentence) with greedy search when
/// `params.num_beams <= 1`, beam search otherwise. `max_new_tokens[i]` caps sentence `i`
/// (EOS included). Returns the generated ids per sentence, without the decoder start token,
/// ending with EOS unless a sentence hit its maximum without a forced EOS.
pub fn generate(
    decoder: &mut dyn StepDecoder,
    params: &GenerationParams,
    max_new_tokens: &[usize],
) -> Result<Vec<Vec<u32>>, GenerateError> {
    if decoder.rows() != max_new_tokens.len() {
        return Err(GenerateError::Other(format!(
            "{} maximum lengths for {} sentences",
            max_new_tokens.len(),
            decoder.rows()
        )));
    }
    if params.num_beams <= 1 {
        greedy(decoder, params, max_new_tokens)
    } else {
        beam_search(decoder, params, max_new_tokens)
    }
}

/// Masks what the logits processors forbid for one hypothesis. `seq` includes the decoder
/// start token (the reference's `input_ids`); `scores` are raw logits (greedy) or log-probs
/// (beam search).
fn process_scores(scores: &mut [f32], seq: &[u32], max_new: usize, params: &GenerationParams) {
    let generated = seq.len() - 1;
    let mut ban = |token: u32| {
        if let Some(s) = scores.get_mut(token as usize) {
            *s = f32::NEG_INFINITY;
        }
    };
    let n = params.no_repeat_ngram_size;
    if n > 0 && seq.len() >= n {
        // Ban the last token of every earlier n-gram whose first n-1 tokens equal the current
        // (n-1)-token suffix.
        let prefix = &seq[seq.len() + 1 - n..];
        for window in seq.windows(n) {
            if &window[..n - 1] == prefix {
                ban(window[n - 1]);
            }
        }
    }
    for &token in &params.banned_token_ids {
        ban(token);
    }
    if generated < params.min_new_tokens || (params.exact_length && generated + 1 < max_new) {
        ban(params.eos_token_id);
    }
    if let Some(guard) = &params.repetition_guard {
        for token in guard.banned_next(&seq[1..]) {
            ban(token);
        }
    }
    if let Some(eos) = params.forced_eos_token_id {
        if generated + 1 == max_new && (eos as usize) < scores.len() {
            scores.fill(f32::NEG_INFINITY);
            scores[eos as usize] = 0.0;
        }
    }
}

/// Index of the first maximum, like `torch.argmax`.
fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

fn vocab_of(logits: &[f32], rows: usize) -> Result<usize, GenerateError> {
    if rows == 0 || !logits.len().is_multiple_of(rows) || logits.is_empty() {
        return Err(GenerateError::Other(format!(
            "decoder returned {} logits for {rows} rows",
            logits.len()
        )));
    }
    Ok(logits.len() / rows)
}

fn greedy(
    decoder: &mut dyn StepDecoder,
    params: &GenerationParams,
    max_new_tokens: &[usize],
) -> Result<Vec<Vec<u32>>, GenerateError> {
    let start = params.decoder_start_token_id;
    let mut seqs: Vec<Vec<u32>> = vec![vec![start]; max_new_tokens.len()];
    // The source sentence of each live row.
    let mut live: Vec<usize> = (0..max_new_tokens.len()).collect();
    let keep: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&s| max_new_tokens[s] > 0)
        .collect();
    if keep.len() != live.len() {
        let rows: Vec<u32> = keep.iter().map(|&s| s as u32).collect();
        decoder.select_rows(&rows, false)?;
        live = keep;
    }
    while !live.is_empty() {
        let tokens: Vec<u32> = live
            .iter()
            .map(|&s| *seqs[s].last().unwrap_or(&start))
            .collect();
        super::check_interrupt()?;
        let mut logits = decoder.step(&tokens)?;
        let vocab = vocab_of(&logits, live.len())?;
        let chosen: Vec<u32> = logits
            .par_chunks_mut(vocab)
            .zip(live.par_iter())
            .map(|(scores, &s)| {
                process_scores(scores, &seqs[s], max_new_tokens[s], params);
                argmax(scores)
            })
            .collect();
        let mut still_live = Vec::with_capacity(live.len());
        let mut kept_rows = Vec::with_capacity(live.len());
        for (row, (&s, &token)) in live.iter().zip(&chosen).enumerate() {
            seqs[s].push(token);
            let finished = token == params.eos_token_id || seqs[s].len() > max_new_tokens[s];
            if !finished {
                still_live.push(s);
                kept_rows.push(row as u32);
            }
        }
        if still_live.len() != live.len() && !still_live.is_empty() {
            decoder.select_rows(&kept_rows, false)?;
        }
        live = still_live;
    }
    Ok(seqs.into_iter().map(|mut s| s.split_off(1)).collect())
}

/// One source sentence's beam search.
struct Beams {
    source: usize,
    max_new: usize,
    /// Running hypotheses, each with the decoder start token; all of equal length.
    seqs: Vec<Vec<u32>>,
    /// Their summed log-probabilities.
    scores: Vec<f32>,
    /// Finished hypotheses and their length-penalised scores, best first, at most `num_beams`.
    finished: Vec<(f32, Vec<u32>)>,
    /// The reference's `is_early_stop_heuristic_unsatisfied`: can running beams still improve
    /// on the finished ones?
    improvable: bool,
    done: bool,
}

/// One continuation of a running beam.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f32,
    beam: usize,
    token: u32,
}

impl Candidate {
    /// Orders like `torch.topk` on the flattened `(beam, token)` scores: higher score first,
    /// ties to the lower flat index.
    fn before(&self, other: &Candidate) -> bool {
        self.score > other.score
            || (self.score == other.score && (self.beam, self.token) < (other.beam, other.token))
    }
}

/// Inserts `c` into `top` (kept sorted, at most `k` long).
fn push_top_k(top: &mut Vec<Candidate>, c: Candidate, k: usize) {
    if top.len() == k && !c.before(&top[k - 1]) {
        return;
    }
    let pos = top.iter().position(|t| c.before(t)).unwrap_or(top.len());
    top.insert(pos, c);
    top.truncate(k);
}

/// One hypothesis's best `k` continuations from its raw `logits` (clobbered): what scoring
/// every token — `log_softmax`, the processors, `base +` — and keeping the top `k` in
/// `torch.topk` order gives, without writing the vocabulary's log-probabilities.
///
/// A score is `base + (x - max - log_sum)`, a non-decreasing function of the logit `x`, so
/// the best scores belong to the largest logits. Rounding can give two close logits one score,
/// and then the lower token wins the tie: so every token whose logit is within a margin (far
/// wider than that rounding) of the `k`-th largest is scored exactly and ranked as before. A
/// step whose processors rewrite the scores (the forced EOS) or whose logits are not all
/// finite takes the full computation.
fn row_top_k(
    logits: &mut [f32],
    seq: &[u32],
    max_new: usize,
    params: &GenerationParams,
    base: f32,
    beam: usize,
    k: usize,
) -> Vec<Candidate> {
    let mut top = Vec::with_capacity(k + 1);
    let forces_eos = params
        .forced_eos_token_id
        .is_some_and(|eos| seq.len() == max_new && (eos as usize) < logits.len());
    let (max, log_sum) = log_softmax_terms(logits);
    if forces_eos || !max.is_finite() || !log_sum.is_finite() || logits.len() < k {
        // Rare (once per sentence, or logits with NaN): taken whole, NaN scores included.
        log_softmax_in_place(logits);
        process_scores(logits, seq, max_new, params);
        for (token, &lp) in logits.iter().enumerate() {
            let c = Candidate {
                score: base + lp,
                beam,
                token: token as u32,
            };
            push_top_k(&mut top, c, k);
        }
        return top;
    }
    // Banned tokens get -inf here as they would among the log-probabilities.
    process_scores(logits, seq, max_new, params);
    let score = |x: f32| base + (x - max - log_sum);
    // The k-th largest logit. Few of the vocabulary's chunks hold a logit above the k-th
    // largest so far, and that test vectorizes; only those chunks are looked at one by one.
    let mut largest = vec![f32::NEG_INFINITY; k];
    for chunk in logits.chunks(LANES) {
        let bar = largest[k - 1];
        if !chunk.iter().fold(false, |any, &x| any | (x > bar)) {
            continue;
        }
        for &x in chunk {
            if x > largest[k - 1] {
                let pos = largest.iter().position(|&l| x > l).unwrap_or(k - 1);
                largest.insert(pos, x);
                largest.truncate(k);
            }
        }
    }
    let kth = largest[k - 1];
    // With fewer than k tokens allowed, kth is -inf, the margin +inf and the floor -inf:
    // every token is ranked, the -inf ones by index.
    let margin = 1e-5 * (1.0 + (kth - max).abs() + (kth - max - log_sum).abs() + score(kth).abs());
    push_from(&mut top, logits, kth - margin, beam, k, score);
    top
}

/// Pushes every token whose value in `values` is at least `floor`, scored by `score`, into
/// `top`; chunks with no such value are skipped with one vectorized test.
fn push_from(
    top: &mut Vec<Candidate>,
    values: &[f32],
    floor: f32,
    beam: usize,
    k: usize,
    score: impl Fn(f32) -> f32,
) {
    for (c, chunk) in values.chunks(LANES).enumerate() {
        if !chunk.iter().fold(false, |any, &x| any | (x >= floor)) {
            continue;
        }
        for (i, &x) in chunk.iter().enumerate() {
            if x >= floor {
                let candidate = Candidate {
                    score: score(x),
                    beam,
                    token: (c * LANES + i) as u32,
                };
                push_top_k(top, candidate, k);
            }
        }
    }
}

/// Chunk width for the vectorized scans over a vocabulary row.
const LANES: usize = 16;

/// `log_softmax`'s two terms over `xs`: `max` and `log(sum(exp(x - max)))` (NaN when `max`
/// is not finite).
fn log_softmax_terms(xs: &[f32]) -> (f32, f32) {
    let max = super::exp_sum::row_max(xs);
    if !max.is_finite() {
        return (max, f32::NAN);
    }
    (max, super::exp_sum::sum_exp(xs, max).ln())
}

/// In-place `log_softmax`, computed as `x - max - log(sum(exp(x - max)))` like torch.
fn log_softmax_in_place(xs: &mut [f32]) {
    let (max, log_sum) = log_softmax_terms(xs);
    if !max.is_finite() {
        return;
    }
    for x in xs.iter_mut() {
        *x = *x - max - log_sum;
    }
}

fn beam_search(
    decoder: &mut dyn StepDecoder,
    params: &GenerationParams,
    max_new_tokens: &[usize],
) -> Result<Vec<Vec<u32>>, GenerateError> {
    let n = params.num_beams;
    // Twice the beams, so that n beams can continue even if n candidates end in EOS.
    let k = 2 * n;
    let start = params.decoder_start_token_id;
    let mut results: Vec<Vec<u32>> = vec![Vec::new(); max_new_tokens.len()];

    // Every source starts as n beams; sentences with no room to generate are done already.
    // The n beams are n copies of one hypothesis, of which only the first is live, so the
    // first step decodes one row per sentence (`rows_per_sentence`) and the rows are expanded
    // into beams after it (see `first_step_candidates`).
    let mut rows_per_sentence = 1;
    let mut live: Vec<Beams> = Vec::new();
    let mut rows = Vec::new();
    for (source, &max_new) in max_new_tokens.iter().enumerate() {
        if max_new == 0 {
            continue;
        }
        rows.push(source as u32);
        let mut scores = vec![-1e9f32; n];
        // Only the first beam is live at the start, so that the n beams do not pick the same
        // tokens.
        scores[0] = 0.0;
        live.push(Beams {
            source,
            max_new,
            seqs: vec![vec![start]; n],
            scores,
            finished: Vec::new(),
            improvable: true,
            done: false,
        });
    }
    if live.is_empty() {
        return Ok(results);
    }
    decoder.select_rows(&rows, false)?;

    while !live.is_empty() {
        let per = rows_per_sentence;
        let tokens: Vec<u32> = live
            .iter()
            .flat_map(|b| b.seqs.iter().take(per).map(|s| *s.last().unwrap_or(&start)))
            .collect();
        super::check_interrupt()?;
        let mut logits = decoder.step(&tokens)?;
        let vocab = vocab_of(&logits, tokens.len())?;
        // At the first step a sentence's one row holds the logits of all its beams; kept whole
        // for the beams that have no row of their own (`row_top_k` clobbers its row).
        let first_step_logits = (per < n).then(|| logits.clone());

        // a–c, per row and in parallel: log-probs, processors, accumulated scores, and the row's
        // best 2n continuations (the sentence's best 2n are among its rows' best 2n).
        let mut row_tops: Vec<Vec<Candidate>> = logits
            .par_chunks_mut(vocab)
            .enumerate()
            .map(|(row, scores)| {
                let (beams, beam) = (&live[row / per], row % per);
                row_top_k(
                    scores,
                    &beams.seqs[beam],
                    beams.max_new,
                    params,
                    beams.scores[beam],
                    beam,
                    k,
                )
            })
            .collect();
        if let Some(first) = first_step_logits {
            for (e, beams) in live.iter().enumerate() {
                let row = &first[e * vocab..(e + 1) * vocab];
                first_step_candidates(&mut row_tops[e], row, beams, params, k);
            }
        }

        let mut next_rows: Vec<u32> = Vec::with_capacity(n * live.len());
        let mut any_done = false;
        for (e, beams) in live.iter_mut().enumerate() {
            let generated = beams.seqs[0].len() - 1;
            let new_len = generated + 1;

            // The sentence's top 2n continuations, in `torch.topk` order.
            let mut top: Vec<Candidate> = Vec::with_capacity(k + 1);
            for c in row_tops[e * per..(e + 1) * per].iter().flatten() {
                push_top_k(&mut top, *c, k);
            }

            // d. Which continuations end their hypothesis.
            let at_max = new_len >= beams.max_new;
            let hits: Vec<bool> = top
                .iter()
                .map(|c| at_max || c.token == params.eos_token_id)
                .collect();

            // f. Finished hypotheses: only among the top n continuations, and only while the
            // sentence can still take them (`_update_finished_beams`).
            let full = beams.finished.len() == n && params.early_stopping;
            if !full && beams.improvable {
                let penalty = (new_len as f64).powf(params.length_penalty) as f32;
                for (c, _) in top.iter().zip(&hits).take(n).filter(|(_, &hit)| hit) {
                    let mut seq = beams.seqs[c.beam].clone();
                    seq.push(c.token);
                    let score = c.score / penalty;
                    // Stable insertion: on equal scores earlier finished hypotheses stay ahead.
                    let pos = beams
                        .finished
                        .iter()
                        .position(|(s, _)| score > *s)
                        .unwrap_or(beams.finished.len());
                    beams.finished.insert(pos, (score, seq));
                }
                beams.finished.truncate(n);
            }

            // e. The n best continuations that did not finish run on.
            let running: Vec<Candidate> = top
                .iter()
                .zip(&hits)
                .filter(|(_, &hit)| !hit)
                .map(|(c, _)| *c)
                .take(n)
                .collect();

            // g. Early-stopping heuristic, then whether this sentence is done.
            if beams.finished.len() == n {
                if let Some(best) = running.first() {
                    let best_possible =
                        best.score / (new_len as f64).powf(params.length_penalty) as f32;
                    let worst = beams
                        .finished
                        .iter()
                        .map(|(s, _)| *s)
                        .fold(f32::INFINITY, f32::min);
                    beams.improvable &= best_possible > worst;
                }
            }
            beams.done = at_max
                || running.len() < n
                || (beams.finished.len() == n && params.early_stopping)
                || !beams.improvable;
            if beams.done {
                any_done = true;
                continue;
            }

            let old_seqs = std::mem::take(&mut beams.seqs);
            beams.seqs = running
                .iter()
                .map(|c| {
                    let mut seq = old_seqs[c.beam].clone();
                    seq.push(c.token);
                    seq
                })
                .collect();
            beams.scores = running.iter().map(|c| c.score).collect();
            // At the first step every beam continues the sentence's one row.
            next_rows.extend(
                running
                    .iter()
                    .map(|c| (e * per + c.beam.min(per - 1)) as u32),
            );
        }

        rows_per_sentence = n;
        if any_done {
            for beams in live.iter().filter(|b| b.done) {
                results[beams.source] = beams
                    .finished
                    .first()
                    .map(|(_, seq)| seq[1..].to_vec())
                    .unwrap_or_default();
            }
            live.retain(|b| !b.done);
            if !live.is_empty() {
                decoder.select_rows(&next_rows, false)?;
            }
        } else {
            // After the first step the rows are a sentence's beams in place; before it, one
            // row per sentence becomes n.
            decoder.select_rows(&next_rows, per == n)?;
        }
    }
    Ok(results)
}

/// Completes a sentence's first-step candidates, `top` (its first beam's best `k`, from its
/// one decoded row), with its other beams' where they could rank among the best `k`.
///
/// At the first step every beam is the same hypothesis (the decoder start token over the
/// same source), so each beam's logits are the decoded row's, bit for bit; only the scores it
/// starts from differ (0 for the first, -1e9 for the others, as in transformers). A
/// continuation's log-probability is at most 0 (the processors only ban tokens or force one
/// to 0), so another beam's candidates score at most its start: when the first beam has `k`
/// candidates above that, the others cannot enter the top `k` and are not scored (the
/// usual case, saving n − 1 of n rows of the first step's decoding); otherwise they are
/// scored from `row` exactly as their own rows would have been.
fn first_step_candidates(
    top: &mut Vec<Candidate>,
    row: &[f32],
    beams: &Beams,
    params: &GenerationParams,
    k: usize,
) {
    let others_best = beams.scores[1..]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if top.len() == k && top[k - 1].score > others_best {
        return;
    }
    for beam in 1..beams.scores.len() {
        let mut logits = row.to_vec();
        let others = row_top_k(
            &mut logits,
            &beams.seqs[beam],
            beams.max_new,
            params,
            beams.scores[beam],
            beam,
            k,
        );
        for c in others {
            push_top_k(top, c, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder whose next-token logits depend only on the previous token, from a table.
    struct TableDecoder {
        /// `table[prev]` = logits for the next token.
        table: Vec<Vec<f32>>,
        rows: usize,
        steps: usize,
    }

    impl StepDecoder for TableDecoder {
        fn rows(&self) -> usize {
            self.rows
        }
        fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
            assert_eq!(tokens.len(), self.rows);
            self.steps += 1;
            Ok(tokens
                .iter()
                .flat_map(|&t| self.table[t as usize].clone())
                .collect())
        }
        fn select_rows(&mut self, rows: &[u32], _: bool) -> Result<(), GenerateError> {
            assert!(rows.iter().all(|&r| (r as usize) < self.rows));
            self.rows = rows.len();
            Ok(())
        }
    }

    /// Vocabulary: 0 = eos, 1 = pad/start, 2..=4 words.
    fn params(num_beams: usize) -> GenerationParams {
        GenerationParams {
            num_beams,
            length_penalty: 1.0,
            early_stopping: true,
            no_repeat_ngram_size: 0,
            min_new_tokens: 0,
            exact_length: false,
            repetition_guard: None,
            decoder_start_token_id: 1,
            eos_token_id: 0,
            forced_eos_token_id: Some(0),
            banned_token_ids: vec![1],
        }
    }

    #[test]
    fn greedy_never_emits_pad_and_forces_eos_at_max_length() {
        // After start, pad (1) is best but banned; then 2 -> 3 -> 3 ... never EOS.
        let table = vec![
            vec![0.0; 5],
            vec![0.0, 9.0, 5.0, 1.0, 1.0],
            vec![0.0, 9.0, 1.0, 5.0, 1.0],
            vec![0.0, 9.0, 1.0, 5.0, 1.0],
            vec![0.0; 5],
        ];
        let mut dec = TableDecoder {
            table,
            rows: 1,
            steps: 0,
        };
        let out = generate(&mut dec, &params(1), &[4]).unwrap();
        assert_eq!(out, vec![vec![2, 3, 3, 0]]);
    }

    #[test]
    fn each_sequence_in_a_batch_stops_at_its_own_eos_or_length() {
        let table = vec![
            vec![0.0; 5],
            vec![0.0, 0.0, 5.0, 1.0, 1.0],
            vec![9.0, 0.0, 1.0, 5.0, 1.0], // after 2: EOS
            vec![0.0; 5],
            vec![0.0; 5],
        ];
        let mut dec = TableDecoder {
            table,
            rows: 3,
            steps: 0,
        };
        let out = generate(&mut dec, &params(1), &[5, 1, 5]).unwrap();
        assert_eq!(out, vec![vec![2, 0], vec![0], vec![2, 0]]);
        assert_eq!(
            dec.steps, 2,
            "the batch stops when its longest sequence does"
        );
    }

    #[test]
    fn min_new_tokens_suppresses_eos() {
        let table = vec![
            vec![9.0, 0.0, 1.0, 0.0, 0.0],
            vec![9.0, 0.0, 1.0, 0.0, 0.0],
            vec![9.0, 0.0, 0.0, 1.0, 0.0],
            vec![9.0, 0.0, 0.0, 0.0, 1.0],
            vec![9.0, 0.0, 1.0, 0.0, 0.0],
        ];
        let mut p = params(1);
        p.min_new_tokens = 3;
        let mut dec = TableDecoder {
            table,
            rows: 1,
            steps: 0,
        };
        assert_eq!(
            generate(&mut dec, &p, &[10]).unwrap(),
            vec![vec![2, 3, 4, 0]]
        );
    }

    #[test]
    fn exact_length_runs_every_sentence_to_its_own_maximum_in_greedy_and_beam_search() {
        // EOS is every row's best token after any word: without exact_length all stop at once.
        let table = vec![
            vec![0.0; 5],
            vec![0.0, 0.0, 5.0, 1.0, 1.0],
            vec![9.0, 0.0, 1.0, 5.0, 1.0],
            vec![9.0, 0.0, 0.0, 1.0, 5.0],
            vec![9.0, 0.0, 5.0, 0.0, 1.0],
        ];
        for beams in [1, 3] {
            let mut p = params(beams);
            let mut dec = TableDecoder {
                table: table.clone(),
                rows: 3,
                steps: 0,
            };
            let free = generate(&mut dec, &p, &[6, 2, 4]).unwrap();
            assert!(free.iter().all(|s| s.len() == 2), "{beams} beams: {free:?}");
            p.exact_length = true;
            let mut dec = TableDecoder {
                table: table.clone(),
                rows: 3,
                steps: 0,
            };
            let out = generate(&mut dec, &p, &[6, 2, 4]).unwrap();
            let lengths: Vec<usize> = out.iter().map(Vec::len).collect();
            assert_eq!(lengths, vec![6, 2, 4], "{beams} beams: {out:?}");
            assert!(out
                .iter()
                .all(|s| s.last() == Some(&0) && !s[..s.len() - 1].contains(&0)));
        }
    }

    #[test]
    fn no_repeat_ngram_bans_the_completing_token() {
        let mut p = params(1);
        p.no_repeat_ngram_size = 2;
        p.forced_eos_token_id = None;
        // 2 -> 3 -> 2 -> (3 banned: bigram 2 3 seen) 4 ...
        let table = vec![
            vec![0.0; 5],
            vec![0.0, 0.0, 5.0, 1.0, 0.5],
            vec![0.0, 0.0, 0.2, 5.0, 0.5],
            vec![0.0, 0.0, 5.0, 1.0, 0.5],
            vec![9.0, 0.0, 0.0, 0.0, 0.0],
        ];
        let mut dec = TableDecoder {
            table,
            rows: 1,
            steps: 0,
        };
        assert_eq!(
            generate(&mut dec, &p, &[10]).unwrap(),
            vec![vec![2, 3, 2, 4, 0]]
        );
    }

    #[test]
    fn repetition_guard_breaks_a_loop_that_greedy_would_follow_to_max_length() {
        // 2 -> 3 -> 2 -> 3 ... a two-token loop; EOS is the runner-up after 2.
        let table = vec![
            vec![0.0; 5],
            vec![0.0, 0.0, 5.0, 1.0, 0.0],
            vec![4.0, 0.0, 1.0, 5.0, 0.0],
            vec![0.0, 0.0, 5.0, 1.0, 0.0],
            vec![0.0; 5],
        ];
        let mut dec = TableDecoder {
            table: table.clone(),
            rows: 1,
            steps: 0,
        };
        let looped = generate(&mut dec, &params(1), &[12]).unwrap();
        assert_eq!(
            looped[0].len(),
            12,
            "without the guard the loop runs to the limit"
        );

        let mut p = params(1);
        p.repetition_guard = Some(RepetitionGuard::default());
        let mut dec = TableDecoder {
            table,
            rows: 1,
            steps: 0,
        };
        // "2 3" may follow itself once; the token completing a third copy is banned.
        assert_eq!(
            generate(&mut dec, &p, &[12]).unwrap(),
            vec![vec![2, 3, 2, 3, 2, 0]]
        );
    }

    #[test]
    fn repetition_guard_allows_a_few_copies_of_one_token() {
        let guard = RepetitionGuard::default();
        assert!(guard.banned_next(&[7, 7]).is_empty());
        assert_eq!(guard.banned_next(&[5, 7, 7, 7]), vec![7]);
        assert!(guard.banned_next(&[1, 2, 3, 1, 2]).is_empty());
        assert_eq!(guard.banned_next(&[1, 2, 3, 1, 2, 3, 1, 2]), vec![3]);
    }

    /// Greedy takes 2 (p≈0.6) then must continue with a weak token; 3 (p≈0.4) leads to a
    /// near-certain EOS: beam search finds 3, EOS.
    fn better_total_than_greedy_table() -> Vec<Vec<f32>> {
        vec![
            vec![0.0; 5],
            vec![-9.0, -99.0, 0.4, 0.0, -9.0],
            vec![0.0, -99.0, 0.0, 0.0, 0.0],
            vec![9.0, -99.0, 0.0, 0.0, 0.0],
            vec![0.0; 5],
        ]
    }

    #[test]
    fn beam_search_prefers_the_better_total_over_the_greedy_first_step() {
        let table = better_total_than_greedy_table();
        let mut dec = TableDecoder {
            table: table.clone(),
            rows: 1,
            steps: 0,
        };
        let greedy = generate(&mut dec, &params(1), &[6]).unwrap();
        assert_eq!(greedy[0][0], 2);
        let mut dec = TableDecoder {
            table,
            rows: 2,
            steps: 0,
        };
        let beams = generate(&mut dec, &params(2), &[6, 6]).unwrap();
        assert_eq!(beams, vec![vec![3, 0], vec![3, 0]]);
    }

    /// A [`TableDecoder`] that records how many rows each step decodes.
    struct CountingDecoder {
        inner: TableDecoder,
        rows_per_step: Vec<usize>,
    }

    impl StepDecoder for CountingDecoder {
        fn rows(&self) -> usize {
            self.inner.rows()
        }
        fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
            self.rows_per_step.push(tokens.len());
            self.inner.step(tokens)
        }
        fn select_rows(&mut self, rows: &[u32], same: bool) -> Result<(), GenerateError> {
            self.inner.select_rows(rows, same)
        }
    }

    #[test]
    fn the_first_beam_step_decodes_one_row_per_sentence() {
        let mut dec = CountingDecoder {
            inner: TableDecoder {
                table: better_total_than_greedy_table(),
                rows: 3,
                steps: 0,
            },
            rows_per_step: Vec::new(),
        };
        let beams = generate(&mut dec, &params(2), &[6, 6, 6]).unwrap();
        // The same answer as with every beam decoded (the test above), from 3 rows, then 2 × 3.
        assert_eq!(beams, vec![vec![3, 0]; 3]);
        assert_eq!(dec.rows_per_step, vec![3, 6]);
    }

    /// Every beam's first-step candidates scored from the one row, best `k`, as transformers
    /// ranks them: `(beam, token, score bits)`.
    fn every_beams_top_k(
        row: &[f32],
        beams: &Beams,
        p: &GenerationParams,
        k: usize,
    ) -> Vec<(usize, u32, u32)> {
        let mut top = Vec::new();
        for (beam, &base) in beams.scores.iter().enumerate() {
            let mut scores = row.to_vec();
            log_softmax_in_place(&mut scores);
            process_scores(&mut scores, &beams.seqs[beam], beams.max_new, p);
            for (token, &lp) in scores.iter().enumerate() {
                let c = Candidate {
                    score: base + lp,
                    beam,
                    token: token as u32,
                };
                push_top_k(&mut top, c, k);
            }
        }
        top.iter()
            .map(|c| (c.beam, c.token, c.score.to_bits()))
            .collect()
    }

    #[test]
    fn first_step_candidates_rank_as_if_every_beam_had_its_own_row() {
        let p = params(3);
        let k = 6;
        let beams = |max_new| Beams {
            source: 0,
            max_new,
            seqs: vec![vec![1]; 3],
            scores: vec![0.0, -1e9, -1e9],
            finished: Vec::new(),
            improvable: true,
            done: false,
        };
        // Enough tokens: the first beam's candidates are the top k. Only 4 tokens allowed (1
        // is banned) or EOS forced at the first step: the other beams' fill the top k.
        let rows: [(Vec<f32>, usize); 3] = [
            ((0..40).map(|t| ((t * 7919) % 37) as f32 / 3.0).collect(), 5),
            (vec![0.5, 3.0, 2.0, -1.0, 0.25], 5),
            (vec![0.5, 3.0, 2.0, -1.0, 0.25], 1),
        ];
        for (row, max_new) in rows {
            let beams = beams(max_new);
            let mut first = row.clone();
            let mut top = row_top_k(&mut first, &beams.seqs[0], max_new, &p, 0.0, 0, k);
            first_step_candidates(&mut top, &row, &beams, &p, k);
            let got: Vec<(usize, u32, u32)> = top
                .iter()
                .map(|c| (c.beam, c.token, c.score.to_bits()))
                .collect();
            assert_eq!(got, every_beams_top_k(&row, &beams, &p, k), "{row:?}");
        }
    }

    #[test]
    fn candidates_order_like_topk() {
        let mut top = Vec::new();
        for (score, beam, token) in [(1.0, 0, 5), (2.0, 1, 0), (1.0, 0, 2), (0.5, 0, 0)] {
            push_top_k(&mut top, Candidate { score, beam, token }, 3);
        }
        let order: Vec<(usize, u32)> = top.iter().map(|c| (c.beam, c.token)).collect();
        assert_eq!(order, vec![(1, 0), (0, 2), (0, 5)]);
    }

    /// What `row_top_k` must equal: every token scored, then the top k.
    fn full_top_k(
        logits: &[f32],
        seq: &[u32],
        max_new: usize,
        p: &GenerationParams,
        base: f32,
    ) -> Vec<(u32, u32)> {
        let mut scores = logits.to_vec();
        log_softmax_in_place(&mut scores);
        process_scores(&mut scores, seq, max_new, p);
        let mut top = Vec::new();
        for (token, &lp) in scores.iter().enumerate() {
            push_top_k(
                &mut top,
                Candidate {
                    score: base + lp,
                    beam: 1,
                    token: token as u32,
                },
                8,
            );
        }
        top.iter().map(|c| (c.token, c.score.to_bits())).collect()
    }

    #[test]
    fn a_rows_top_k_from_its_logits_equals_scoring_every_token() {
        let p = GenerationParams {
            no_repeat_ngram_size: 2,
            ..params(4)
        };
        // Logits with exact ties, ties that only rounding makes (neighbours one ulp apart, a
        // large base), banned and forced tokens; a small LCG for the rest.
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 10.0
        };
        for case in 0..200 {
            let mut logits: Vec<f32> = (0..500).map(|_| next()).collect();
            let top = logits.iter().copied().fold(f32::MIN, f32::max);
            logits[3] = top;
            logits[10] = top;
            logits[20] = f32::from_bits(top.to_bits() - 1);
            logits[30] = f32::from_bits(top.to_bits() - 2);
            let base = if case % 2 == 0 { -0.5 } else { -1234.5 };
            let seq = [1, 5, 9, 5];
            for max_new in [4, 9] {
                let expected = full_top_k(&logits, &seq, max_new, &p, base);
                let mut scratch = logits.clone();
                let got: Vec<(u32, u32)> = row_top_k(&mut scratch, &seq, max_new, &p, base, 1, 8)
                    .iter()
                    .map(|c| (c.token, c.score.to_bits()))
                    .collect();
                assert_eq!(got, expected, "case {case}, max_new {max_new}");
            }
        }
        // Fewer allowed tokens than k.
        let mut few = vec![f32::NEG_INFINITY; 10];
        few[4] = 1.0;
        let expected = full_top_k(&few, &[1], 9, &p, 0.0);
        let got: Vec<(u32, u32)> = row_top_k(&mut few.clone(), &[1], 9, &p, 0.0, 1, 8)
            .iter()
            .map(|c| (c.token, c.score.to_bits()))
            .collect();
        assert_eq!(got, expected);
    }
}
