//! `polybrief translate FILE|-`: one text into English on stdout. The text goes through the
//! same stages as an article in a run (language per paragraph, sentences, batched
//! translation), so a mixed text keeps its English and only the rest is translated.

use std::path::PathBuf;

use candle_core::DType;

use crate::article::{DetectedParagraph, Lang};
use crate::config::Context;
use crate::engines::TranslatorPool;
use crate::error::{Error, ExitCode};
use crate::models::marian_tokenizer::MarianTokenizer;
use crate::models::precision::Precision;
use crate::pipeline::translate::{
    load_marian_with_precision, translate_article, Translate, TranslateError, TranslateSettings,
    Translator, Translators,
};
use crate::pipeline::{detect, segment};

/// What `polybrief translate` was asked to do (from `cli::TranslateArgs`).
#[derive(Clone, Debug)]
pub struct TranslateOptions {
    /// The text to translate: a file, or `-` for standard input.
    pub input: String,

    /// The text's language (ISO 639-1, e.g. `de`). Default: identified paragraph by paragraph.
    pub from: Option<Lang>,

    /// Beam size; 1 is greedy search (fastest). Default: 4, as the opus-mt models were tuned.
    pub beams: Option<u16>,

    /// Precision of the translation models (`auto`: int8 on the CPU, f32 on a GPU).
    pub precision: Precision,

    /// A local opus-mt folder (config.json, model.safetensors or pytorch_model.bin, source.spm,
    /// target.spm, vocab.json) that translates every non-English sentence, instead of the catalog.
    pub model_dir: Option<PathBuf>,
}

pub fn run(args: TranslateOptions, ctx: &Context) -> Result<ExitCode, Error> {
    // Read as `run` reads it (HTML without its markup, front matter as metadata); `-` is
    // standard input.
    let article = super::one_article(&args.input, "translate")?;
    let mut detected = detect::detect(article);
    if let Some(lang) = &args.from {
        detected.lang = Some(lang.clone());
        for paragraph in &mut detected.paragraphs {
            *paragraph = DetectedParagraph {
                text: paragraph.text.clone(),
                lang: Some(lang.clone()),
            };
        }
    }
    if detected.lang.is_none() {
        return Err(Error::Usage(format!(
            "the language of {} could not be identified; say it with --from LANG (e.g. --from de)",
            args.input
        )));
    }
    let segmented = segment::segment(detected);

    let mut settings = TranslateSettings::default();
    if let Some(beams) = args.beams {
        settings.num_beams = usize::from(beams);
    }
    let precision = args
        .precision
        .resolve(&ctx.device, &ctx.device_name)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let english = match &args.model_dir {
        Some(dir) => {
            let model = load_marian_with_precision(dir, DType::F32, &ctx.device, precision)?;
            let tokenizer = MarianTokenizer::from_dir(dir).map_err(|e| TranslateError::Load {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            let name = dir.display().to_string();
            let mut one = OneModel(Box::new(Translator::new(name, model, tokenizer, settings)));
            translate_article(segmented, &mut one)?
        }
        None => {
            let store = ctx.model_store();
            let mut pool =
                TranslatorPool::new(&ctx.catalog, &store, &ctx.device, settings, precision);
            translate_article(segmented, &mut pool)?
        }
    };
    crate::output::write_stdout(format!("{}\n", english.text()).as_bytes())?;
    Ok(ExitCode::Success)
}

/// `--model-dir`: one model for every language.
struct OneModel(Box<dyn Translate>);

impl Translators for OneModel {
    fn for_lang(&mut self, _lang: &Lang) -> Result<&mut dyn Translate, TranslateError> {
        Ok(self.0.as_mut())
    }
}
