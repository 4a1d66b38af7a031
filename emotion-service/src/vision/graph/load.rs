//! Loading `<name>.graph.json` and `<name>.safetensors` into prepared operators: weights are
//! re-laid out once here so that running a frame only multiplies.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::kernels::{Activation, Depthwise, Im2Col, MaxPool, PRelu, Product};
use super::padding::Padding;
use super::{Graph, GraphError, Op, Step};

#[derive(Debug, Deserialize)]
struct GraphFile {
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    ops: Vec<OpFile>,
    /// Each tensor's shape (NHWC), by id: what tells a residual addition from a broadcast one.
    #[serde(default)]
    shapes: HashMap<usize, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct OpFile {
    op: String,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    #[serde(default)]
    stride: Vec<usize>,
    #[serde(default)]
    padding: Padding,
    #[serde(default)]
    activation: String,
    #[serde(default)]
    filter: Vec<usize>,
    #[serde(default)]
    axis: i64,
    #[serde(default)]
    shape: Vec<i64>,
    #[serde(default)]
    paddings: Vec<Vec<usize>>,
}

/// What building one operator needs: the graph's constants and a way to say what is wrong.
struct Builder<'a> {
    constants: &'a HashMap<usize, Tensor>,
    path: &'a Path,
}

impl Builder<'_> {
    fn invalid(&self, reason: impl Into<String>) -> GraphError {
        GraphError::Invalid {
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn constant(&self, id: usize) -> Result<Tensor, GraphError> {
        self.constants
            .get(&id)
            .cloned()
            .ok_or_else(|| self.invalid(format!("missing constant t{id}")))
    }

    /// The operator, and the inputs it reads at run time (weights are folded in).
    fn op(&self, o: &OpFile) -> Result<(Op, Vec<usize>), GraphError> {
        let activation = Activation::parse(&o.activation);
        let stride = (
            o.stride.first().copied().unwrap_or(1),
            o.stride.get(1).copied().unwrap_or(1),
        );
        let first = o.inputs[..1.min(o.inputs.len())].to_vec();
        let op = match o.op.as_str() {
            "CONV_2D" => return Ok((self.conv(o, stride, activation)?, first)),
            "DEPTHWISE_CONV_2D" => return Ok((self.depthwise(o, stride, activation)?, first)),
            "PRELU" => {
                let alpha = self
                    .constant(o.inputs[1])?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                return Ok((Op::PRelu(PRelu { alpha }), first));
            }
            "MAX_POOL_2D" => Op::MaxPool(MaxPool {
                filter: (o.filter[0], o.filter[1]),
                stride,
                padding: o.padding,
            }),
            "PAD" => Op::Pad {
                paddings: o.paddings.clone(),
            },
            "ADD" => Op::Add {
                activation,
                overwrite_first: false,
            },
            "RELU" => Op::Relu,
            "RESHAPE" => Op::Reshape {
                shape: o.shape.iter().map(|d| (*d).max(1) as usize).collect(),
            },
            "CONCATENATION" => Op::Concat { axis: o.axis },
            "MEAN" => Op::Mean,
            "SOFTMAX" => Op::Softmax,
            other => return Err(self.invalid(format!("unsupported operator {other}"))),
        };
        Ok((op, o.inputs.clone()))
    }

    fn conv(
        &self,
        o: &OpFile,
        stride: (usize, usize),
        activation: Activation,
    ) -> Result<Op, GraphError> {
        let w = self.constant(o.inputs[1])?; // OHWI
        let (oc, kh, kw, _) = w
            .dims4()
            .map_err(|_| self.invalid("convolution weights are not 4-dimensional"))?;
        if stride.0 != stride.1 {
            return Err(self.invalid("non-square convolution stride"));
        }
        let pointwise = kh == 1 && kw == 1 && stride == (1, 1);
        let weights = w
            .permute((0, 3, 1, 2))?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bias = self
            .constant(o.inputs[2])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if bias.len() != oc {
            return Err(self.invalid("convolution bias does not match its channels"));
        }
        Ok(Op::Conv {
            product: Product::new(weights, oc, bias, activation)?,
            im2col: (!pointwise).then_some(Im2Col {
                kernel: (kh, kw),
                stride: stride.0,
                padding: o.padding,
            }),
            residual: false,
        })
    }

    fn depthwise(
        &self,
        o: &OpFile,
        stride: (usize, usize),
        activation: Activation,
    ) -> Result<Op, GraphError> {
        let w = self.constant(o.inputs[1])?; // 1HWC
        let (_, kh, kw, c) = w
            .dims4()
            .map_err(|_| self.invalid("depthwise weights are not 4-dimensional"))?;
        let weights = w
            .permute((3, 1, 2, 0))?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bias = self
            .constant(o.inputs[2])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if bias.len() != c {
            return Err(self.invalid("depthwise bias does not match its channels"));
        }
        Ok(Op::Depthwise(Depthwise::new(
            weights,
            bias,
            (kh, kw),
            stride,
            o.padding,
            activation,
        )))
    }
}

impl Graph {
    /// Loads `<name>.graph.json` and `<name>.safetensors` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, GraphError> {
        let json_path = dir.join(format!("{name}.graph.json"));
        let weights_path = dir.join(format!("{name}.safetensors"));
        let shown = |p: &Path| p.display().to_string();
        let text = std::fs::read_to_string(&json_path).map_err(|source| GraphError::Read {
            path: shown(&json_path),
            source,
        })?;
        let file: GraphFile = serde_json::from_str(&text).map_err(|source| GraphError::Parse {
            path: shown(&json_path),
            source,
        })?;
        let tensors =
            candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|source| {
                GraphError::Weights {
                    path: shown(&weights_path),
                    source,
                }
            })?;
        let constants: HashMap<usize, Tensor> = tensors
            .into_iter()
            .filter_map(|(k, t)| {
                k.strip_prefix('t')
                    .and_then(|i| i.parse().ok())
                    .map(|i| (i, t))
            })
            .collect();
        let builder = Builder {
            constants: &constants,
            path: &json_path,
        };
        let mut steps = Vec::with_capacity(file.ops.len());
        for o in &file.ops {
            let output = *o
                .outputs
                .first()
                .ok_or_else(|| builder.invalid(format!("{} has no output", o.op)))?;
            let (op, inputs) = builder.op(o)?;
            steps.push(Step {
                op,
                inputs,
                output,
                frees: Vec::new(),
            });
        }
        fuse_activations(&mut steps, &file.outputs);
        fuse_residuals(&mut steps, &file.outputs, &file.shapes);
        add_in_place(&mut steps, &file.outputs);
        free_after_last_read(&mut steps, &file.outputs);
        let input = *file
            .inputs
            .first()
            .ok_or_else(|| builder.invalid("no input"))?;
        Ok(Self {
            input,
            outputs: file.outputs,
            constants,
            steps,
        })
    }
}

/// Folds each PRELU and RELU into the convolution or addition that produces its input, when
/// nothing else reads that input: the activation then runs in the producer's pass over its output
/// instead of a pass and an allocation of its own (53 of the iris model's 55 convolutions are
/// followed by a PRELU; the detectors' 33 and 17 RELUs were a tenth of the far pass).
fn fuse_activations(steps: &mut Vec<Step>, graph_outputs: &[usize]) {
    let readers = readers(steps);
    let mut fused = vec![false; steps.len()];
    for i in 0..steps.len() {
        let fused_activation = match &steps[i].op {
            Op::PRelu(prelu) => Activation::PRelu(prelu.alpha.clone()),
            Op::Relu => Activation::Relu,
            _ => continue,
        };
        let Some(&input) = steps[i].inputs.first() else {
            continue;
        };
        if readers.get(&input) != Some(&1) || graph_outputs.contains(&input) {
            continue;
        }
        let Some(producer) = steps[..i].iter().rposition(|s| s.output == input) else {
            continue;
        };
        let activation = match &mut steps[producer].op {
            Op::Conv { product, .. } => &mut product.activation,
            Op::Depthwise(d) => &mut d.activation,
            Op::Add { activation, .. } => activation,
            _ => continue,
        };
        if *activation != Activation::None {
            continue;
        }
        *activation = fused_activation;
        steps[producer].output = steps[i].output;
        fused[i] = true;
    }
    let mut index = 0;
    steps.retain(|_| {
        index += 1;
        !fused[index - 1]
    });
}

/// Folds each residual addition into the convolution that makes one of its inputs, when nothing
/// else reads that input, the convolution has no activation of its own, and both inputs have one
/// shape: the convolution's output then starts from the other input (and its bias) and takes the
/// addition's activation, and the addition's own pass over the map is gone (26 in the iris
/// model, 20 in the mesh). The convolution moves to the addition's place, where the residual is
/// ready; its own input stays unchanged meanwhile, since only a value read once is ever
/// overwritten.
fn fuse_residuals(
    steps: &mut Vec<Step>,
    graph_outputs: &[usize],
    shapes: &HashMap<usize, Vec<i64>>,
) {
    let readers = readers(steps);
    // The addition's index -> the convolution's index and the residual's id.
    let mut folds: HashMap<usize, (usize, usize)> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        let (Op::Add { .. }, [a, b]) = (&step.op, &step.inputs[..]) else {
            continue;
        };
        if shapes.get(a).is_none() || shapes.get(a) != shapes.get(b) {
            continue;
        }
        // A convolution without an activation of its own, whose output only this reads.
        let foldable = |op: &Op| match op {
            Op::Conv {
                product, residual, ..
            } => !residual && product.activation == Activation::None,
            _ => false,
        };
        let fold = [(*a, *b), (*b, *a)]
            .into_iter()
            .find_map(|(made, residual)| {
                if readers.get(&made) != Some(&1) || graph_outputs.contains(&made) {
                    return None;
                }
                let producer = steps[..i].iter().rposition(|s| s.output == made)?;
                foldable(&steps[producer].op).then_some((producer, residual))
            });
        if let Some(fold) = fold {
            folds.insert(i, fold);
        }
    }
    let moved: HashSet<usize> = folds.values().map(|&(producer, _)| producer).collect();
    let mut waiting: HashMap<usize, Step> = HashMap::new();
    let mut kept = Vec::with_capacity(steps.len() - folds.len());
    for (i, mut step) in std::mem::take(steps).into_iter().enumerate() {
        if moved.contains(&i) {
            waiting.insert(i, step);
            continue;
        }
        let Some(&(producer, residual_id)) = folds.get(&i) else {
            kept.push(step);
            continue;
        };
        let Op::Add { activation, .. } = &mut step.op else {
            unreachable!("only additions fold");
        };
        let activation = std::mem::replace(activation, Activation::None);
        let mut conv = waiting
            .remove(&producer)
            .expect("a folded convolution comes before its addition");
        if let Op::Conv {
            product, residual, ..
        } = &mut conv.op
        {
            product.activation = activation;
            *residual = true;
        }
        conv.inputs.truncate(1);
        conv.inputs.push(residual_id);
        conv.output = step.output;
        kept.push(conv);
    }
    *steps = kept;
}

/// How many steps read each value.
fn readers(steps: &[Step]) -> HashMap<usize, usize> {
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for step in steps {
        for id in &step.inputs {
            *readers.entry(*id).or_default() += 1;
        }
    }
    readers
}

/// Lets a residual addition write into one of its inputs when nothing else reads it and its
/// storage is this run's alone (made fresh by a convolution, a pooling or an addition), swapping
/// the inputs when only the second qualifies: a copy of the map per addition was 7% of a frame.
fn add_in_place(steps: &mut [Step], graph_outputs: &[usize]) {
    let readers = readers(steps);
    let fresh: HashMap<usize, bool> = steps
        .iter()
        .map(|s| {
            let made_here = matches!(
                s.op,
                Op::Conv { .. } | Op::Depthwise(_) | Op::MaxPool(_) | Op::Add { .. }
            );
            (s.output, made_here)
        })
        .collect();
    let owned = |id: &usize| {
        readers.get(id) == Some(&1) && fresh.get(id) == Some(&true) && !graph_outputs.contains(id)
    };
    for step in steps.iter_mut() {
        let Op::Add {
            overwrite_first, ..
        } = &mut step.op
        else {
            continue;
        };
        if let [a, b] = step.inputs[..] {
            if owned(&a) {
                *overwrite_first = true;
            } else if owned(&b) {
                step.inputs.swap(0, 1);
                *overwrite_first = true;
            }
        }
    }
}

/// Marks each value on the step that reads it last, so that a run drops it there and the next
/// operators' outputs take its memory while it is still in cache, instead of every map of the
/// run staying alive until the end.
fn free_after_last_read(steps: &mut [Step], graph_outputs: &[usize]) {
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        for id in &step.inputs {
            last.insert(*id, i);
        }
    }
    for (id, i) in last {
        if !graph_outputs.contains(&id) {
            steps[i].frees.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(inputs: &[usize], output: usize) -> Step {
        Step {
            op: Op::Relu,
            inputs: inputs.to_vec(),
            output,
            frees: Vec::new(),
        }
    }

    /// 0 -> 1 -> 2, with 1 read again by the last step beside 2 (a residual): each value is
    /// freed by its last reader, and the graph's output never.
    #[test]
    fn each_value_is_freed_by_the_step_that_reads_it_last_and_outputs_never() {
        let mut steps = vec![
            step(&[0], 1),
            step(&[1], 2),
            step(&[2, 1], 3),
            step(&[3], 4),
        ];
        free_after_last_read(&mut steps, &[3, 4]);
        let frees: Vec<Vec<usize>> = steps
            .iter()
            .map(|s| {
                let mut f = s.frees.clone();
                f.sort_unstable();
                f
            })
            .collect();
        assert_eq!(frees, vec![vec![0], vec![], vec![1, 2], vec![]]);
    }

    fn add(inputs: &[usize], output: usize) -> Step {
        Step {
            op: Op::Add {
                activation: Activation::None,
                overwrite_first: false,
            },
            ..step(inputs, output)
        }
    }

    /// A RELU and a PRELU whose inputs only they read are folded into the additions before
    /// them (which then write the activation's output); a RELU whose input another step also
    /// reads stays an operator of its own.
    #[test]
    fn activations_fold_into_their_producer_only_when_they_alone_read_it() {
        let prelu = Step {
            op: Op::PRelu(PRelu { alpha: vec![0.25] }),
            ..step(&[5], 4)
        };
        let mut steps = vec![
            add(&[0, 1], 2),
            step(&[2], 3),
            add(&[0, 1], 5),
            prelu,
            add(&[4, 1], 6),
            step(&[6], 7),
            add(&[6, 7], 8),
        ];
        fuse_activations(&mut steps, &[8]);
        let summary: Vec<(usize, Option<Activation>)> = steps
            .iter()
            .map(|s| match &s.op {
                Op::Add { activation, .. } => (s.output, Some(activation.clone())),
                _ => (s.output, None),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (3, Some(Activation::Relu)),
                (4, Some(Activation::PRelu(vec![0.25]))),
                (6, Some(Activation::None)),
                (7, None),
                (8, Some(Activation::None)),
            ]
        );
    }

    fn conv(input: usize, output: usize, activation: Activation) -> Step {
        Step {
            op: Op::Conv {
                product: Product::new(vec![1.0], 1, vec![0.0], activation).expect("a 1x1 product"),
                im2col: None,
                residual: false,
            },
            ..step(&[input], output)
        }
    }

    /// An addition folds into the convolution that makes one of its inputs (either one) only
    /// when the convolution has no activation, nothing else reads its output and both inputs
    /// have one shape; the convolution then stands where the addition was, reads the residual
    /// second, and writes the addition's output with its activation.
    #[test]
    fn a_residual_addition_folds_into_its_convolution_only_when_nothing_else_needs_it_apart() {
        let prelu = Activation::PRelu(vec![0.5]);
        let with_activation = |mut s: Step| {
            if let Op::Add { activation, .. } = &mut s.op {
                *activation = prelu.clone();
            }
            s
        };
        let mut steps = vec![
            conv(0, 1, Activation::None),
            step(&[0], 2),
            // Folds, the convolution's output second.
            with_activation(add(&[2, 1], 3)),
            conv(3, 4, Activation::Relu),
            // Does not: the convolution has an activation of its own.
            add(&[4, 3], 5),
            conv(5, 6, Activation::None),
            // Does not: the shapes differ (a broadcast).
            add(&[6, 5], 7),
            conv(7, 8, Activation::None),
            step(&[8], 9),
            // Does not: another step reads the convolution's output.
            add(&[8, 7], 10),
        ];
        let shapes: HashMap<usize, Vec<i64>> = (0..=10)
            .map(|id| {
                (
                    id,
                    if id == 6 {
                        vec![1, 1, 1, 4]
                    } else {
                        vec![1, 2, 2, 4]
                    },
                )
            })
            .collect();
        fuse_residuals(&mut steps, &[10], &shapes);
        let summary: Vec<(&str, Vec<usize>, usize)> = steps
            .iter()
            .map(|s| {
                let kind = match &s.op {
                    Op::Conv {
                        residual: true,
                        product,
                        ..
                    } => {
                        assert_eq!(product.activation, prelu);
                        "conv+residual"
                    }
                    Op::Conv { .. } => "conv",
                    Op::Add { .. } => "add",
                    _ => "other",
                };
                (kind, s.inputs.clone(), s.output)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("other", vec![0], 2),
                ("conv+residual", vec![0, 2], 3),
                ("conv", vec![3], 4),
                ("add", vec![4, 3], 5),
                ("conv", vec![5], 6),
                ("add", vec![6, 5], 7),
                ("conv", vec![7], 8),
                ("other", vec![8], 9),
                ("add", vec![8, 7], 10),
            ]
        );
    }
}
