//! Whisper (base) on candle-core/candle-nn, loaded from the CTranslate2 `model.bin`.
//!
//! Faithful to OpenAI's `whisper/model.py`: erf-GELU in the encoder and decoder MLPs
//! (candle-transformers uses tanh-GELU, which measurably changes the transcripts), sinusoidal
//! encoder positions (CT2 stores the exact sinusoids), learned decoder positions, pre-norm
//! residual blocks, final layer norms, and the output projection tied to the token embedding.
//! Unlike Whisper's fixed 30 s window the encoder runs on the real audio length only.

use candle_core::{D, Device, Tensor};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Module};

use crate::ct2::Ct2Model;
use crate::Error;

const LN_EPS: f64 = 1e-5;

/// Arithmetic of the large matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 weights (the CT2 float16 weights widened), gemm.
    F32,
    /// 8-bit weights (GGML q8_0, 32-value blocks with an f16 scale) for every linear layer and
    /// the vocabulary projection; activations are quantised per row on the fly. On CPUs with
    /// AVX512-VNNI / AVX-VNNI candle runs these as repacked integer dot products (vpdpbusd),
    /// several times cheaper than f32 gemm on this model's shapes; elsewhere it falls back to
    /// its AVX2 q8 kernels. Attention products and convolutions stay f32.
    #[default]
    Int8,
}

/// A linear layer in either precision (candle_nn::Linear is f32 only).
///
/// Int8 weights are split by output rows into two halves that run on the recognizer's two
/// pool threads (`rayon::join`): candle's quantised kernels run on its own barrier pool,
/// which the process keeps at one thread ([`crate::init_process`]) because its spinning
/// workers waste a shared machine's cores; splitting here gets both cores back without it.
struct Lin {
    parts: Vec<QMatMul>,
    b: Option<Tensor>,
}

impl Lin {
    fn new(w: Tensor, b: Option<Tensor>, precision: Precision) -> candle_core::Result<Self> {
        Ok(Lin { parts: weight_parts(w, precision)?, b })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = matmul_parts(&self.parts, x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `x · Wᵀ` over the row parts of `W`, the parts in parallel, concatenated on the last axis.
fn matmul_parts(parts: &[QMatMul], x: &Tensor) -> candle_core::Result<Tensor> {
    match parts {
        [w] => forward_one(w, x),
        [a, b] => {
            let x = x.contiguous()?;
            let (ya, yb) = rayon::join(|| forward_one(a, &x), || forward_one(b, &x));
            Tensor::cat(&[&ya?, &yb?], x.rank() - 1)
        }
        _ => {
            let ys = parts.iter().map(|w| forward_one(w, x)).collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::cat(&ys, x.rank() - 1)
        }
    }
}

fn forward_one(w: &QMatMul, x: &Tensor) -> candle_core::Result<Tensor> {
    match w {
        // The quantised kernel needs a contiguous left-hand side.
        QMatMul::QTensor(_) => w.forward(&x.contiguous()?),
        _ => w.forward(x),
    }
}

/// `[n, k]` weight as matmul operands in the requested precision: int8 in two row halves when
/// the shape allows (k a multiple of the q8_0 block, halves on the kernel's 16-row tiles),
/// otherwise f32 in one piece.
fn weight_parts(w: Tensor, precision: Precision) -> candle_core::Result<Vec<QMatMul>> {
    let (n, k) = w.dims2()?;
    if precision != Precision::Int8 || k % GgmlDType::Q8_0.block_size() != 0 {
        return Ok(vec![QMatMul::Tensor(w)]);
    }
    // QTensor::quantize reads the storage from its start, ignoring a view's offset: quantise
    // a fresh copy of each part.
    let q = |w: &Tensor| {
        let (rows, cols) = w.dims2()?;
        let fresh = Tensor::from_vec(w.flatten_all()?.to_vec1::<f32>()?, (rows, cols), w.device())?;
        QMatMul::from_qtensor(QTensor::quantize(&fresh, GgmlDType::Q8_0)?)
    };
    if n % 32 == 0 && n >= 64 {
        let h = n / 2;
        Ok(vec![q(&w.narrow(0, 0, h)?)?, q(&w.narrow(0, h, n - h)?)?])
    } else {
        Ok(vec![q(&w)?])
    }
}

struct SelfAttention {
    qkv: Lin,
    out: Lin,
}

struct CrossAttention {
    q: Lin,
    kv: Lin,
    out: Lin,
}

struct Mlp {
    fc1: Lin,
    fc2: Lin,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }
}

struct EncoderLayer {
    attn_ln: LayerNorm,
    attn: SelfAttention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

struct DecoderLayer {
    self_ln: LayerNorm,
    self_attn: SelfAttention,
    cross_ln: LayerNorm,
    cross: CrossAttention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

/// Per-layer self-attention keys/values of a decoded prefix, `[B, H, T, Dh]` each.
#[derive(Clone)]
pub struct KvCache {
    pub layers: Vec<(Tensor, Tensor)>,
}

impl KvCache {
    /// Repeats a batch-1 cache `b` times so each sequence of a batch continues the same prefix.
    pub fn broadcast(&self, b: usize) -> candle_core::Result<Self> {
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                let (_, h, t, d) = k.dims4()?;
                Ok((
                    k.broadcast_as((b, h, t, d))?.contiguous()?,
                    v.broadcast_as((b, h, t, d))?.contiguous()?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { layers })
    }
    pub fn len(&self) -> usize {
        self.layers.first().map(|(k, _)| k.dims()[2]).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Cross-attention keys/values of one encoded utterance, per decoder layer, `[1, H, S, Dh]`.
pub struct CrossKv {
    layers: Vec<(Tensor, Tensor)>,
}

pub struct Whisper {
    conv1: Conv1d,
    conv2: Conv1d,
    enc_pos: Tensor,
    enc_layers: Vec<EncoderLayer>,
    enc_ln: LayerNorm,
    tok_emb: Tensor,
    precision: Precision,
    /// The tied output projection restricted to the first `n` vocabulary entries, prepared
    /// once ([`Whisper::prepare_projection`]) in the model's precision.
    projection: Option<(usize, Vec<QMatMul>)>,
    dec_pos: Tensor,
    dec_layers: Vec<DecoderLayer>,
    dec_ln: LayerNorm,
    n_heads: usize,
    pub d_model: usize,
    pub n_vocab: usize,
    pub max_target_positions: usize,
    pub max_source_positions: usize,
    device: Device,
}

fn linear(m: &Ct2Model, p: &str, dev: &Device, precision: Precision) -> Result<Lin, Error> {
    let w = m.tensor(&format!("{p}/weight"), dev)?;
    let b = match m.variables.contains_key(&format!("{p}/bias")) {
        true => Some(m.tensor(&format!("{p}/bias"), dev)?),
        false => None,
    };
    Ok(Lin::new(w, b, precision)?)
}

fn layer_norm(m: &Ct2Model, p: &str, dev: &Device) -> Result<LayerNorm, Error> {
    Ok(LayerNorm::new(m.tensor(&format!("{p}/gamma"), dev)?, m.tensor(&format!("{p}/beta"), dev)?, LN_EPS))
}

fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..).take_while(|i| m.variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))).count()
}

impl Whisper {
    pub fn from_ct2(m: &Ct2Model, device: &Device, precision: Precision) -> Result<Self, Error> {
        if m.spec != "WhisperSpec" {
            return Err(Error::Model(format!("model.bin holds a {} model, expected WhisperSpec", m.spec)));
        }
        let dev = device;
        // CT2 activation ids: 0 ReLU, 1 GELU-tanh, 2 Swish, 3 GELU (erf). Whisper must be erf.
        if let Ok(act) = m.get("decoder/activation")
            && act.as_i64() != Some(3)
        {
            return Err(Error::Model(format!("unexpected decoder activation {:?}", act.as_i64())));
        }
        let n_heads = m.get("encoder/num_heads")?.as_i64().unwrap_or(8) as usize;
        let conv = |p: &str, stride| -> Result<Conv1d, Error> {
            Ok(Conv1d::new(
                m.tensor(&format!("{p}/weight"), dev)?,
                Some(m.tensor(&format!("{p}/bias"), dev)?),
                Conv1dConfig { padding: 1, stride, dilation: 1, groups: 1, cudnn_fwd_algo: None },
            ))
        };
        let n_enc = count_layers(m, "encoder");
        let n_dec = count_layers(m, "decoder");
        if n_enc == 0 || n_dec == 0 {
            return Err(Error::Model("model.bin has no encoder or decoder layers".into()));
        }
        let mut enc_layers = Vec::with_capacity(n_enc);
        for i in 0..n_enc {
            let p = format!("encoder/layer_{i}");
            enc_layers.push(EncoderLayer {
                attn_ln: layer_norm(m, &format!("{p}/self_attention/layer_norm"), dev)?,
                attn: SelfAttention {
                    qkv: linear(m, &format!("{p}/self_attention/linear_0"), dev, precision)?,
                    out: linear(m, &format!("{p}/self_attention/linear_1"), dev, precision)?,
                },
                mlp_ln: layer_norm(m, &format!("{p}/ffn/layer_norm"), dev)?,
                mlp: Mlp {
                    fc1: linear(m, &format!("{p}/ffn/linear_0"), dev, precision)?,
                    fc2: linear(m, &format!("{p}/ffn/linear_1"), dev, precision)?,
                },
            });
        }
        let mut dec_layers = Vec::with_capacity(n_dec);
        for i in 0..n_dec {
            let p = format!("decoder/layer_{i}");
            dec_layers.push(DecoderLayer {
                self_ln: layer_norm(m, &format!("{p}/self_attention/layer_norm"), dev)?,
                self_attn: SelfAttention {
                    qkv: linear(m, &format!("{p}/self_attention/linear_0"), dev, precision)?,
                    out: linear(m, &format!("{p}/self_attention/linear_1"), dev, precision)?,
                },
                cross_ln: layer_norm(m, &format!("{p}/attention/layer_norm"), dev)?,
                cross: CrossAttention {
                    q: linear(m, &format!("{p}/attention/linear_0"), dev, precision)?,
                    kv: linear(m, &format!("{p}/attention/linear_1"), dev, precision)?,
                    out: linear(m, &format!("{p}/attention/linear_2"), dev, precision)?,
                },
                mlp_ln: layer_norm(m, &format!("{p}/ffn/layer_norm"), dev)?,
                mlp: Mlp {
                    fc1: linear(m, &format!("{p}/ffn/linear_0"), dev, precision)?,
                    fc2: linear(m, &format!("{p}/ffn/linear_1"), dev, precision)?,
                },
            });
        }
        let tok_emb = m.tensor("decoder/embeddings/weight", dev)?;
        let enc_pos = m.tensor("encoder/position_encodings/encodings", dev)?;
        let dec_pos = m.tensor("decoder/position_encodings/encodings", dev)?;
        let (n_vocab, d_model) = tok_emb.dims2()?;
        Ok(Self {
            conv1: conv("encoder/conv1", 1)?,
            conv2: conv("encoder/conv2", 2)?,
            max_source_positions: enc_pos.dims()[0],
            max_target_positions: dec_pos.dims()[0],
            enc_pos,
            enc_layers,
            enc_ln: layer_norm(m, "encoder/layer_norm", dev)?,
            tok_emb,
            precision,
            projection: None,
            dec_pos,
            dec_layers,
            dec_ln: layer_norm(m, "decoder/layer_norm", dev)?,
            n_heads,
            d_model,
            n_vocab,
            device: dev.clone(),
        })
    }

    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        x.reshape((b, t, self.n_heads, c / self.n_heads))?.transpose(1, 2)?.contiguous()
    }

    fn merge_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, h, t, d) = x.dims4()?;
        x.transpose(1, 2)?.contiguous()?.reshape((b, t, h * d))
    }

    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let dh = q.dims()[3] as f64;
        let mut w = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / dh.sqrt()))?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        w.matmul(v)
    }

    /// Encodes a log-mel spectrogram `[80, n_frames]` (row-major) into `[1, S, d_model]`.
    pub fn encode(&self, mel: &[f32], n_frames: usize) -> candle_core::Result<Tensor> {
        let x = Tensor::from_slice(mel, (1, mel.len() / n_frames, n_frames), &self.device)?;
        let x = self.conv1.forward(&x)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?;
        let x = x.transpose(1, 2)?.contiguous()?;
        let s = x.dims()[1];
        if s > self.max_source_positions {
            candle_core::bail!("audio too long: {s} encoder frames > {}", self.max_source_positions);
        }
        let mut x = x.broadcast_add(&self.enc_pos.narrow(0, 0, s)?)?;
        for l in &self.enc_layers {
            let h = l.attn_ln.forward(&x)?;
            let qkv = l.attn.qkv.forward(&h)?;
            let d = self.d_model;
            let q = self.split_heads(&qkv.narrow(2, 0, d)?)?;
            let k = self.split_heads(&qkv.narrow(2, d, d)?)?;
            let v = self.split_heads(&qkv.narrow(2, 2 * d, d)?)?;
            let a = self.merge_heads(&self.attend(&q, &k, &v, None)?)?;
            x = (x + l.attn.out.forward(&a)?)?;
            x = (&x + l.mlp.forward(&l.mlp_ln.forward(&x)?)?)?;
        }
        self.enc_ln.forward(&x)
    }

    /// Precomputes the cross-attention keys/values for an encoded utterance.
    pub fn cross_kv(&self, enc: &Tensor) -> candle_core::Result<CrossKv> {
        let d = self.d_model;
        let layers = self
            .dec_layers
            .iter()
            .map(|l| {
                let kv = l.cross.kv.forward(enc)?;
                Ok((self.split_heads(&kv.narrow(2, 0, d)?)?, self.split_heads(&kv.narrow(2, d, d)?)?))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(CrossKv { layers })
    }

    /// Runs the decoder on `tokens` (`[B, L]`) continuing `past` (positions `0..past.len()`),
    /// attending to one utterance. Returns the final-norm hidden states `[B, L, d]` and the
    /// extended cache. Causal within the new tokens.
    pub fn decode(
        &self,
        tokens: &Tensor,
        past: Option<&KvCache>,
        cross: &CrossKv,
    ) -> candle_core::Result<(Tensor, KvCache)> {
        let (_, l) = tokens.dims2()?;
        let offset = past.map(|p| p.len()).unwrap_or(0);
        let positions: Vec<usize> = (offset..offset + l).collect();
        // Mask [L, offset + L]: new token i sees all past positions and new tokens ≤ i.
        let mask: Vec<f32> = (0..l)
            .flat_map(|i| (0..offset + l).map(move |j| if j <= offset + i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (l, offset + l), &self.device)?;
        self.decode_masked(tokens, &positions, &mask, past, cross)
    }

    /// Decoder pass with explicit positions and attention mask `[L, past + L]` (0 = visible,
    /// −∞ = hidden). With a tree mask this scores a whole trie of token sequences in one pass
    /// ("tree attention"): each node sees the prompt and its ancestors only.
    pub fn decode_masked(
        &self,
        tokens: &Tensor,
        positions: &[usize],
        mask: &Tensor,
        past: Option<&KvCache>,
        cross: &CrossKv,
    ) -> candle_core::Result<(Tensor, KvCache)> {
        let (b, l) = tokens.dims2()?;
        if positions.iter().any(|&p| p >= self.max_target_positions) {
            candle_core::bail!("token position beyond {}", self.max_target_positions);
        }
        let emb = self.tok_emb.index_select(&tokens.flatten_all()?, 0)?.reshape((b, l, self.d_model))?;
        let pos_idx = Tensor::from_vec(positions.iter().map(|&p| p as u32).collect::<Vec<_>>(), l, &self.device)?;
        let mut x = emb.broadcast_add(&self.dec_pos.index_select(&pos_idx, 0)?)?;
        let mut new_layers = Vec::with_capacity(self.dec_layers.len());
        let d = self.d_model;
        for (i, layer) in self.dec_layers.iter().enumerate() {
            let h = layer.self_ln.forward(&x)?;
            let qkv = layer.self_attn.qkv.forward(&h)?;
            let q = self.split_heads(&qkv.narrow(2, 0, d)?)?;
            let mut k = self.split_heads(&qkv.narrow(2, d, d)?)?;
            let mut v = self.split_heads(&qkv.narrow(2, 2 * d, d)?)?;
            if let Some(p) = past {
                let (pk, pv) = &p.layers[i];
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            let a = self.merge_heads(&self.attend(&q, &k, &v, Some(mask))?)?;
            x = (x + layer.self_attn.out.forward(&a)?)?;
            new_layers.push((k, v));

            let h = layer.cross_ln.forward(&x)?;
            let q = self.split_heads(&layer.cross.q.forward(&h)?)?;
            let (ck, cv) = &cross.layers[i];
            // All sequences attend to the same utterance: fold the batch into the query axis
            // ([H, B·L, Dh] against [H, S, Dh]) instead of materialising B copies of K/V.
            let (_, hh, lq, dh) = q.dims4()?;
            let qf = q.transpose(0, 1)?.contiguous()?.reshape((1, hh, b * lq, dh))?;
            let a = self.attend(&qf, ck, cv, None)?;
            let a = a.reshape((hh, b, lq, dh))?.transpose(0, 1)?.contiguous()?;
            let a = self.merge_heads(&a)?;
            x = (x + layer.cross.out.forward(&a)?)?;
            x = (&x + layer.mlp.forward(&layer.mlp_ln.forward(&x)?)?)?;
        }
        Ok((self.dec_ln.forward(&x)?, KvCache { layers: new_layers }))
    }

    /// Log-probabilities over the first `n_norm` vocabulary entries for hidden states `[N, d]`
    /// (tied output projection). Restricting the normalisation to text tokens + end-of-text
    /// mirrors Whisper's decoding, which suppresses the special tokens.
    pub fn log_probs(&self, hidden: &Tensor, n_norm: usize) -> candle_core::Result<Tensor> {
        candle_nn::ops::log_softmax(&self.logits(hidden, n_norm)?, D::Minus1)
    }

    /// [`Whisper::logits`] as one `Vec` per hidden state (row), each `n_norm` long, taken from
    /// the projection's parts without an intermediate concatenation.
    pub fn logit_rows(&self, hidden: &Tensor, n_norm: usize) -> candle_core::Result<Vec<Vec<f32>>> {
        let parts: Vec<Vec<Vec<f32>>> = match &self.projection {
            Some((n, proj)) if *n == n_norm => {
                let x = hidden.contiguous()?;
                match proj.as_slice() {
                    [a, b] => {
                        let (ya, yb) = rayon::join(|| forward_one(a, &x)?.to_vec2(), || forward_one(b, &x)?.to_vec2());
                        vec![ya?, yb?]
                    }
                    ps => ps.iter().map(|w| forward_one(w, &x)?.to_vec2()).collect::<candle_core::Result<_>>()?,
                }
            }
            _ => vec![self.logits(hidden, n_norm)?.to_vec2()?],
        };
        let rows = parts.first().map_or(0, |p| p.len());
        Ok((0..rows)
            .map(|r| {
                let mut row = Vec::with_capacity(n_norm);
                for p in &parts {
                    let take = (n_norm - row.len()).min(p[r].len());
                    row.extend_from_slice(&p[r][..take]);
                }
                row
            })
            .collect())
    }

    /// Unnormalised scores over the first `n_norm` vocabulary entries for hidden states `[N, d]`.
    pub fn logits(&self, hidden: &Tensor, n_norm: usize) -> candle_core::Result<Tensor> {
        match &self.projection {
            Some((n, proj)) if *n == n_norm => matmul_parts(proj, hidden)?.narrow(D::Minus1, 0, n_norm),
            _ => hidden.matmul(&self.tok_emb.narrow(0, 0, n_norm)?.t()?),
        }
    }

    /// Prepares the output projection over the first `n_norm` vocabulary entries in the
    /// model's precision (the vocabulary projection is a third of the decoder's work). Rows
    /// are padded with zeros to two halves of the quantised kernel's 16-row tiles; the padding is cut off
    /// again in [`Whisper::log_probs`].
    pub fn prepare_projection(&mut self, n_norm: usize) -> candle_core::Result<()> {
        let w = self.tok_emb.narrow(0, 0, n_norm.min(self.n_vocab))?;
        let proj = match self.precision {
            Precision::F32 => vec![QMatMul::Tensor(w.contiguous()?)],
            Precision::Int8 => {
                let pad = n_norm.div_ceil(32) * 32 - n_norm;
                let w = if pad > 0 { Tensor::cat(&[&w, &Tensor::zeros((pad, self.d_model), w.dtype(), w.device())?], 0)? } else { w };
                weight_parts(w, Precision::Int8)?
            }
        };
        self.projection = Some((n_norm, proj));
        Ok(())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}
