"""The text catalog: every label the dashboard shows, in English and 中文.

`t(key, **fields)` looks the key up in the language the sidebar chose (English where a translation is missing)
and fills in `{fields}`. `t_or(key, fallback)` is for texts the registry supplies (method summaries, option
help), which the catalog may translate.
"""

from __future__ import annotations

import streamlit as st

LANGS = {"en": "English", "zh": "中文"}
# Choice widgets whose option labels are translated. Streamlit keeps such a widget's value as its label, so a
# language switch would lose the choice; the language radio re-sets these from their values (carry_choices).
TRANSLATED_CHOICES = (
    "source", "preset", "q_sens_group", "q_sens_metric", "c_groups", "c_clip", "c_y", "x_custom_kind", "x_fit_y",
)  # fmt: skip

TEXT: dict[str, dict[str, str]] = {
    "en": {
        # navigation and sidebar
        "nav_quantize": "Quantize", "nav_scaling": "Scaling", "nav_compare": "Compare",
        "nav_extrapolate": "Extrapolate", "nav_report": "Report",
        "sb_lang": "Language", "sb_model": "Model (preset)", "sb_preset_label": "{name} · {params} params",
        "sb_model_caption": "An MLP from the reference report, {params} params, synthesized from a seed.",
        "sb_method": "Method", "sb_method_help": "Read from the qcore method registry: new methods appear here.",
        "sb_fixed_note": "Greyed-out options are fixed by {method}; choose rtn to set them freely.",
        "sb_bad_options": "These options are not valid: {msg}. Change them to run.",
        "opt_bits": "Bits per code", "opt_group_size": "Group size (0 = per-channel)", "opt_sym": "Symmetric",
        "opt_clip": "Clipping search (MSE)", "opt_target_bpw": "Target bits per weight",
        "no_options": "default options", "per_channel": "per-channel",
        # shared
        "band_excellent": "excellent", "band_good": "good", "band_acceptable": "acceptable", "band_poor": "poor",
        "na": "n/a", "measured": "measured", "extrapolated": "extrapolated", "reference": "reference",
        "err_internal": "Something went wrong inside the lab ({kind}: {msg}). Try other settings; if it persists, "
        "run the same with the command line (python -m qcore run ...) and report what it prints.",
        "y_weight_cosine": "Weight cosine", "y_output_cosine": "Output cosine",
        # Quantize
        "q_title": "Quantize a model",
        "q_intro": "Pick a model and a method in the sidebar, press Run, and see what quantization does: the "
        "compression against its theoretical value, the accuracy, the time, and where every byte goes.",
        "q_choice": "**Model:** `{preset}` · **Method:** `{method}` · **Options:** {options}",
        "q_codec": "Parquet codec", "q_codec_help": "'none' gives the headline ratio; 'zstd' shows the codec's "
        "extra gain as its own part of the size breakdown.",
        "q_run": "Run", "q_progress": "Quantizing {preset} with {method}",
        "q_start": "Nothing has run yet: press **Run** to quantize {model} with {method} (a few seconds on a CPU "
        "for the presets; longer for large files).",
        "q_stale": "The sidebar changed since this run: press **Run** to quantize with the new settings. "
        "Below are the results of the last run.",
        "q_results": "Results: {preset} · {method} ({options})",
        "q_policy": "Quantized: {policy}. Codec: {codec}. Figures are formatted as `python -m qcore run` prints them.",
        "kpi_ratio": "Compression ratio", "kpi_theoretical": "theoretical {value}",
        "kpi_ratio_help": "FP16 artifact bytes / quantized artifact bytes ({bpw} bits per weight, file included). "
        "Theoretical = 16 / payload bits.",
        "kpi_cosine": "Weight cosine", "kpi_cosine_help": "Cosine between W and W_hat over all quantized weights "
        "(float64). Bands: excellent > 0.95, good 0.90-0.95, acceptable 0.85-0.90, poor < 0.85.",
        "kpi_sqnr": "SQNR", "kpi_sqnr_help": "10 log10(sum W² / sum E²); 'exact' means no error at all.",
        "kpi_output": "Output cosine",
        "kpi_output_help": "Cosine between the original and quantized model's outputs on a fixed batch.",
        "kpi_time": "Quantization time", "kpi_threads": "{n} threads",
        "kpi_time_help": "Wall time of quantization alone, without I/O or metrics.",
        "kpi_saved": "Memory saved", "kpi_saved_help": "FP16 {fp16} → quantized {q}.",
        "q_layers": "Per layer", "q_layers_caption": "Predicted cosine: the uniform-noise model of min-max "
        "rounding, from each row's range in units of its standard deviation (n/a for symmetric methods).",
        "q_hist": "Where the levels sit",
        "q_hist_caption": "The weights of one row (and group) with the values W_hat can take drawn over them. "
        "Min-max INT2 stretches its 4 levels to the row's extremes, where almost no weights live.",
        "q_layer": "Layer", "q_row": "Row (0-{n})", "q_group": "Group ({n} per row)",
        "q_hist_note": "**{used} of {n} levels** are used in this group; the two outermost levels hold **{edge}** "
        "of its weights.",
        "q_size": "Where the bytes go",
        "q_size_caption": "Payload (codes) {payload} · metadata (scales, zeros) {meta} · FP16 tensors {fp16} · "
        "container (Parquet framing) {container} · codec gain {gain}. Overhead share (metadata + container): {share}.",
        "q_downloads": "Downloads", "dl_parquet": "Parquet artifact", "dl_json": "JSON record",
        "q_cli": "The same run on the command line prints the same figures:",
        # figures
        "fig_layers_title": "Weight cosine per layer", "fig_measured": "measured", "fig_predicted": "predicted",
        "fig_weights": "weights", "fig_hist_title": "{name}, row {row}, group {group}: weights and the {n} levels",
        "fig_fp16_file": "FP16 file", "fig_quant_file": "Quantized file", "fig_breakdown_title": "Size breakdown ({file})",
        "part_payload": "payload (codes)", "part_metadata": "metadata (scales, zeros)",
        "part_passthrough": "FP16 tensors", "part_container": "container", "part_codec_gain": "codec gain",
        "fig_ratio_title": "Compression ratio", "fig_theoretical": "{method} theoretical {value}",
        "fig_reference": "{method} (reference report)", "fig_cosine_title": "Weight cosine",
        "fig_time_title": "Quantization time ({threads} threads)", "fig_meta_title": "Metadata share of the file",
        "fig_pareto_title": "{y} against bits per weight", "fig_dominated": "dominated", "fig_front": "Pareto front",
        "ax_params": "parameters (log scale)", "ax_ratio": "FP16 bytes / quantized bytes (x)",
        "ax_cosine": "cosine", "ax_seconds": "seconds (log scale)", "ax_meta_pct": "metadata + container (% of file)",
        "ax_layer": "layer", "ax_weight": "weight value", "ax_count": "weights", "ax_size": "size ({unit})",
        "ax_bpw": "bits per weight (file bytes × 8 / params)",
        # tables
        "col_layer": "Layer", "col_shape": "Shape", "col_params": "Params", "col_cosine": "Weight cosine",
        "col_sqnr_db": "SQNR (dB)", "col_range_std": "Range / std", "col_predicted": "Predicted cosine",
        "col_model": "Model", "col_fp16": "FP16 size", "col_method": "Method", "col_size": "Size",
        "col_ratio": "Ratio", "col_ratio_ref": "Ratio (ref)", "col_theoretical": "Theoretical",
        "col_cosine_ref": "Cosine (ref)", "col_sqnr": "SQNR", "col_band": "Band", "col_time": "Time",
        "col_time_ref": "Time (ref)", "col_config": "Configuration",
        "col_pareto": "On front", "col_bpw": "bpw", "col_ratio_num": "Ratio", "col_output_cosine": "Output cosine",
        "col_time_s": "Time (s)", "col_kind": "Basis", "col_saving": "Saving",
        # Scaling
        "s_title": "Scaling with model size",
        "s_intro": "The reference report's experiment, live: every preset with every chosen method, our figures "
        "beside the report's own.",
        "s_presets": "Models", "s_methods": "Methods",
        "s_methods_help": "Methods with free options use the values set for them in the sidebar.",
        "s_run": "Run scaling", "s_progress": "Running the scaling table",
        "s_start": "Press **Run scaling** to quantize the chosen models with the chosen methods.",
        "s_stale": "The selection changed since this run: press **Run scaling** to update. Below: the last run.",
        "s_table": "Results beside the reference report",
        "s_table_caption": "'(ref)' columns are the reference report's published figures; the report's 1.0000 "
        "INT8 cosine is rounded, and its 8.12x INT2 ratio exceeds the 8x limit of 16 → 2 bits (a codec effect).",
        "s_trends": "Trends", "s_trend_compression": "Compression ratio", "s_trend_accuracy": "Accuracy",
        "s_trend_speed": "Quantization time", "s_one_preset": "Choose two or more models to see trends.",
        # Compare
        "c_title": "Compare configurations",
        "c_intro": "Many methods, bit widths and group sizes on one model ({preset}, from the sidebar). The Pareto "
        "front holds the configurations no other beats on both size and accuracy.",
        "c_bits": "rtn bits", "c_groups": "rtn group sizes", "c_group_fmt": "g{g}", "c_clip": "rtn range",
        "c_clip_on": "clipping search", "c_clip_off": "min-max", "c_baselines": "Other methods (defaults)",
        "c_baselines_help": "Every registered method besides rtn, run with its default options.",
        "c_count": "{n} configurations on {preset}. The clipping search tries 29 ranges per group, so "
        "it takes several times longer than min-max.", "c_run": "Run comparison",
        "c_progress": "Sweeping configurations on {preset}",
        "c_start": "Press **Run comparison** to quantize every configuration above.",
        "c_stale": "The selection changed since this run: press **Run comparison** to update. Below: the last run.",
        "c_y": "Accuracy axis",
        "c_front": "**Pareto front ({n}) on {preset}:** {configs}",
        "c_table": "All configurations", "c_table_caption": "Click a column header to sort.",
        # Extrapolate
        "err_input": "Cannot run this: {msg}. {hint}",
        "hint_sidebar": "Change the model, method or options in the sidebar and try again.",
        "hint_upload": "Upload the file again, or choose another model in the sidebar.",
        "hint_policy": "Fix the regular expression under 'Which tensors are quantized' (Python re syntax).",
        "hint_compare": "Change the model in the sidebar or the configurations above and try again.",
        "hint_extrapolate": "Check the custom config.json (a Hugging Face decoder config) or the parameter count, "
        "or choose other methods.",
        "err_source": "The server file cannot be opened: {msg}. Choose another file.",
        "err_upload": "This file cannot be read: {msg}. Upload a different weight file (safetensors, pt, pth, bin, "
        "npz or a qcore parquet artifact).",
        "none": "none", "and": " and ", "lower_better": "lower is better", "higher_better": "higher is better",
        # model sources
        "sb_source": "Model source", "src_preset": "Preset", "src_upload": "Upload a file", "src_server": "Server folder",
        "sb_server": "File in the server's weights folder", "sb_server_help": "Files under the folder named by "
        "QCORE_WEIGHTS_DIR on the server.",
        "sb_upload": "Your weights", "sb_upload_help": "safetensors, pt/pth/bin (weights only, no pickle code), npz, "
        "or a qcore parquet artifact; up to {limit}. Only this browser session sees it.",
        "sb_upload_caption": "Up to {limit}. The file stays in this session and is deleted when you remove it.",
        "sb_reading": "Reading {name} ...", "sb_upload_ok": "{n} float tensors, {params} params.",
        # Quantize: model summary and policy
        "q_no_model": "Upload a weight file in the sidebar (or choose a preset) to start.",
        "q_model": "Model: {name}", "q_method": "Method and run",
        "pol_head": "Quantize the head", "pol_head_help": "The output head (an MLP's last layer, an LM's lm_head). "
        "The command line quantizes it unless --keep-head.",
        "pol_emb": "Quantize embeddings", "pol_emb_help": "Embedding tables (token, position) stay FP16 unless this "
        "is on (the command line's --quantize-embeddings).",
        "pol_include": "Only tensors matching (regex)", "pol_exclude": "Keep FP16 tensors matching (regex)",
        "pol_d_2d": "tensors with 2+ dims", "pol_d_head_q": "head quantized", "pol_d_head_k": "head kept FP16",
        "pol_d_emb_q": "embeddings quantized", "pol_d_emb_k": "embeddings kept FP16",
        "pol_d_include": "only /{pattern}/", "pol_d_exclude": "FP16 for /{pattern}/",
        "pol_include_ph": "e.g. mlp|self_attn", "pol_exclude_ph": "e.g. lm_head|layers\\.0\\.",
        "pol_regex_help": "A Python regular expression searched in each tensor name; empty = no filter.",
        "q_summary_totals": "**{n} tensors · {params} params · FP16 weights {fp16}.** The policy quantizes **{q} "
        "tensors ({q_params} params)**; kept: {kept}.",
        "q_kept_item": "{role}: {n} tensors, {params} params",
        "q_skipped": "Left out (not floating point, so never quantized or counted): {names}.",
        "q_tensors": "All {n} tensors and what the policy does with each",
        "q_policy_now": "Policy: {policy}.",
        "col_tensor": "Tensor", "col_dtype": "dtype (stored)", "col_role": "Policy",
        "role_quantized": "quantized", "role_1d": "FP16 (1-D: bias or norm)", "role_head": "FP16 (head)",
        "role_embedding": "FP16 (embedding)", "role_not_included": "FP16 (not included)",
        "role_excluded": "FP16 (excluded)", "role_skipped": "left out (not float)",
        "q_needs_calib": "{method} needs calibration data, and {model} has none: a weight file carries no model "
        "code to feed inputs through. Choose a calibration-free method (rtn, int8, int2, ...) to run.",
        "kpi_synth": "Synthetic-input output cosine",
        "kpi_synth_help": "No model code, so no real output cosine: cos(W x, W_hat x) per layer with x ~ N(0, I), "
        "over all quantized layers together. A proxy that ignores activations' real statistics.",
        "q_task": "Task metrics", "kpi_task_ref": "FP16 {value}",
        "kpi_task_help": "The model's own quality measure on its held-out data, after quantization.",
        "q_task_caption": "Under each metric: the same metric for the unquantized (FP16) model.",
        "col_synth": "Synthetic-input output cosine", "y_synthetic_output_cosine": "Synthetic-input output cosine",
        "y_task": "{name} ({better})",
        # Quantize: sensitivity
        "q_sens": "Per-layer sensitivity",
        "q_sens_intro": "rtn at {bits} bits on every quantized layer (the policy above applies): which layers "
        "lose the most as the width shrinks.",
        "q_sens_group": "Group size", "q_sens_metric": "Colour by", "q_sens_run": "Run sensitivity",
        "q_sens_start": "Press **Run sensitivity** to quantize every layer at each bit width.",
        "q_sens_stale": "The model, group size or policy changed: press **Run sensitivity** to update. Below: the "
        "last run.",
        "q_sens_progress": "Sensitivity of {preset}", "q_sens_empty": "The policy selects no tensor to quantize.",
        "q_sens_caption": "rtn, asymmetric min-max, {group}. Higher is better in both views.",
        "fig_bits": "{b}-bit", "fig_sens_sqnr_db": "SQNR (dB)", "fig_sens_weight_cosine": "weight cosine",
        "fig_sens_title": "{metric} by layer and bit width", "ax_bits": "rtn code width",
        "c_policy": "Policy (from the Quantize page): {policy}.",
        "c_no_calib": "Methods that need calibration data are left out: this model has no code to run.",
        # Extrapolate
        "x_title": "Extrapolate to real architectures",
        "x_intro": "Exact tensor shapes from published configs: sizes by tensor kind, with FP16 embeddings, heads and "
        "norms counted as they are stored; accuracy extrapolated from layers measured on the presets; memory "
        "with a KV cache. The same figures as `python -m qcore extrapolate --json`.",
        "x_archs": "Architectures", "x_methods": "Methods",
        "x_methods_help": "From the method registry; methods other than rtn use the options set for them in the "
        "sidebar.",
        "x_custom": "Custom architecture", "x_custom_none": "none", "x_custom_config": "config.json",
        "x_custom_params": "parameter count",
        "x_policy_help": "Off (the default): kept in FP16, as most deployments do.",
        "x_config_file": "Upload a Hugging Face config.json", "x_config_text": "... or paste it",
        "x_params": "Parameters (billions)", "x_params_help": "A generic Llama-style shape with about this many "
        "parameters (32k vocabulary, untied head).",
        "x_run": "Extrapolate", "x_progress": "Fitting accuracy on the presets and sizing the architectures",
        "x_step_fit": "fit {label}",
        "x_start": "Press **Extrapolate**. Sizes take a moment; each method's accuracy fit quantizes the three "
        "presets once (cached).",
        "x_stale": "The choices changed since this run: press **Extrapolate** to update. Below: the last run.",
        "x_sizes": "Sizes and extrapolated accuracy",
        "x_sizes_caption": "All figures are extrapolated (computed for the architecture, not measured on it). "
        "Ratio = FP16 artifact bytes / quantized artifact bytes, everything stored counted.",
        "x_why": "**{arch} · {label}:** **{share}** of the {size} file is the FP16 {kinds} ({kept}), so the real ratio "
        "is **{ratio}**, not the {ideal} of {bits}-bit codes alone. With that quantized too: {alt}.",
        "x_fit": "Accuracy: measured layers, extrapolated trend",
        "x_fit_y": "Axis", "x_fit_caption": "Solid: layers measured on the presets. Dashed: the fitted trend "
        "SQNR = a + b·log10(ln n), extended to the targets' row lengths (open diamonds, extrapolated); the "
        "shaded band is ± (back-test error + 2 × fit residual).",
        "x_backtest": "**{label}**: back-test (fit without the large preset, predict it) {db} dB = {cos} in "
        "cosine; band ±{band} dB; fit residual {res} dB over {n} layers.",
        "x_fit_failed": "**{label}**: no accuracy fit ({msg}).",
        "x_memory": "Does it fit? Memory what-if", "x_context": "Context (tokens)", "x_batch": "Batch",
        "x_kv": "KV cache", "x_over_pct": "Overhead (% of weights)", "x_over_gib": "+ fixed overhead (GiB)",
        "x_over_help": "Activations, allocator slack and the CUDA context: a rule of thumb you set, not a "
        "measurement.",
        "x_memory_caption": "Total = weights + KV cache (2 × layers × KV heads × head dim × tokens × batch) + "
        "{pct}% of the weights + {fixed} GiB. ✓: fits, with the headroom left; ✗: short by that much.",
        "fits_yes": "✓ {room} free", "fits_no": "✗ {room} short",
        "x_reference": "Beside the reference report's predictions",
        "x_ref_agree": "**{arch} · {label}:** ours {ratio} agrees with the report.",
        "x_ref_fp16": "**{arch} · {label}:** the report assumed every parameter at the method's bits, but {share} "
        "of {arch}'s {label} file is the FP16 {kinds}, so the real ratio is **{ratio}**, not {ref}. With that "
        "quantized too: {alt}.",
        "x_ref_meta": "**{arch} · {label}:** ours {ratio} against the report's {ref}: scales, zeros and the "
        "container take {meta} of the file.",
        "x_ref_cos_inside": "Cosine {cos} (extrapolated) is inside the report's {ref}.",
        "x_ref_cos_below": "Cosine {cos} (extrapolated) is below the report's {ref}.",
        "x_ref_cos_above": "Cosine {cos} (extrapolated) is above the report's {ref}.",
        "x_reference_caption": "The report's sizes are in its own units ('MB', 'GB'); ours are binary. Its "
        "'AngelSlim 2-bit' row is compared with seq, whose fit here is post-training only (no QAT on the presets).",
        "x_cli": "The same figures on the command line",
        "col_arch": "Architecture", "col_cos_x": "Weight cosine (extrapolated)", "col_cos_band": "Cosine band",
        "col_weights": "Weights", "col_kv": "KV cache", "col_overhead": "Overhead", "col_total": "Total",
        "col_size_ref": "Size (ref)", "col_saving_ref": "Saving (ref)",
        "kind_embedding": "embedding", "kind_attention": "attention", "kind_mlp": "MLP", "kind_norm": "norms",
        "kind_head": "head", "kind_container": "container",
        "fig_kind_title": "Artifact size by tensor kind", "ax_gib": "size (GiB)",
        "fig_fit_band": "{label} band", "fig_fit_line": "{label} fit (dashed: extrapolated)",
        "fig_fit_measured": "{label} measured (presets)", "fig_fit_hover_measured": "{label} · measured layer",
        "fig_fit_target": "{label} · {arch} (extrapolated)",
        "fig_fit_hover_target": "{label} · {arch} · extrapolated", "fig_fit_edge": "largest measured row ",
        "fig_fit_title": "Per-layer {y} against row length", "ax_row_len": "row length n (input columns, log scale)",
        # Report
        "r_title": "Scaling report",
        "r_intro": "The same Markdown report the command line writes (python -m qcore report --out DIR), in the "
        "sidebar's language.",
        "r_start": "The report is built from the scaling runs. None has run yet: build it for all presets with "
        "int8 and int2.",
        "r_run": "Build report", "r_basis": "Models: {presets} · methods: {methods} (from the Scaling page).",
        "r_dl_md": "Markdown", "r_dl_csv": "CSV",
    },
    "zh": {
        "nav_quantize": "量化", "nav_scaling": "缩放分析", "nav_compare": "方法对比",
        "nav_extrapolate": "外推", "nav_report": "报告",
        "sb_lang": "语言", "sb_model": "模型（预设）", "sb_preset_label": "{name} · {params} 参数",
        "sb_model_caption": "参考报告中的 MLP，{params} 个参数，由随机种子生成。",
        "sb_method": "量化方法", "sb_method_help": "来自 qcore 方法注册表：新方法会自动出现在这里。",
        "sb_fixed_note": "灰色选项由 {method} 固定；如需自由设置，请选择 rtn。",
        "sb_bad_options": "选项无效：{msg}。请修改后再运行。",
        "opt_bits": "编码位宽", "opt_group_size": "分组大小（0 = 按通道）", "opt_sym": "对称量化",
        "opt_clip": "裁剪搜索（MSE）", "opt_target_bpw": "目标每权重比特数",
        "opt_bits_help": "量化编码的比特数", "opt_group_size_help": "每个 scale 覆盖的输入列数；0 表示按通道",
        "opt_sym_help": "对称量化（zero 固定为 2**(bits-1)），而非 min-max",
        "opt_clip_help": "为每组搜索使 MSE 最小的范围收缩系数",
        "method_int8": "参考报告的 PTQ INT8：RTN，8 比特，按通道，对称",
        "method_int2": "参考报告的 PTQ INT2：RTN，2 比特，按通道，非对称 min-max",
        "method_rtn": "就近取整：2/3/4/8 比特，按通道或分组，对称或非对称，可选 MSE 裁剪",
        "no_options": "默认选项", "per_channel": "按通道",
        "band_excellent": "优秀", "band_good": "良好", "band_acceptable": "可接受", "band_poor": "较差",
        "na": "无", "measured": "实测", "extrapolated": "外推", "reference": "参考",
        "err_internal": "实验室内部出错（{kind}: {msg}）。请尝试其他设置；如果问题持续，请用命令行"
        "（python -m qcore run ...）运行相同设置并反馈其输出。",
        "y_weight_cosine": "权重余弦", "y_output_cosine": "输出余弦",
        "q_title": "量化模型",
        "q_intro": "在侧边栏选择模型和方法，点击运行，查看量化的效果：压缩比与理论值、精度、耗时，以及每个字节的去向。",
        "q_choice": "**模型：** `{preset}` · **方法：** `{method}` · **选项：** {options}",
        "q_codec": "Parquet 编码", "q_codec_help": "'none' 给出主压缩比；'zstd' 把编码器的额外收益单独列在字节构成中。",
        "q_run": "运行", "q_progress": "正在用 {method} 量化 {preset}",
        "q_start": "尚未运行：点击 **运行**，用 {method} 量化 {model}（预设模型在 CPU 上需几秒；大文件更久）。",
        "q_stale": "侧边栏设置已改变：点击 **运行** 以新设置量化。下方为上一次的结果。",
        "q_results": "结果：{preset} · {method}（{options}）",
        "q_policy": "量化范围：{policy}。编码：{codec}。数字格式与 `python -m qcore run` 的输出一致。",
        "kpi_ratio": "压缩比", "kpi_theoretical": "理论值 {value}",
        "kpi_ratio_help": "FP16 文件字节 / 量化文件字节（含文件开销为每权重 {bpw} 比特）。理论值 = 16 / 载荷比特。",
        "kpi_cosine": "权重余弦", "kpi_cosine_help": "所有量化权重上 W 与 W_hat 的余弦相似度（float64）。"
        "等级：优秀 > 0.95，良好 0.90-0.95，可接受 0.85-0.90，较差 < 0.85。",
        "kpi_sqnr": "信噪比 SQNR", "kpi_sqnr_help": "10 log10(sum W² / sum E²)；'exact' 表示完全无误差。",
        "kpi_output": "输出余弦", "kpi_output_help": "原始模型与量化模型在固定输入批次上输出的余弦相似度。",
        "kpi_time": "量化耗时", "kpi_threads": "{n} 线程", "kpi_time_help": "仅量化本身的耗时，不含 I/O 与指标计算。",
        "kpi_saved": "节省内存", "kpi_saved_help": "FP16 {fp16} → 量化后 {q}。",
        "q_layers": "逐层结果", "q_layers_caption": "预测余弦：min-max 取整的均匀噪声模型，由每行范围（以该行标准差为单位）"
        "计算（对称方法为无）。",
        "q_hist": "量化级的位置",
        "q_hist_caption": "某一行（及分组）的权重分布，叠加 W_hat 可取的值。min-max INT2 把 4 个量化级拉到该行的极值处，"
        "那里几乎没有权重。",
        "q_layer": "层", "q_row": "行（0-{n}）", "q_group": "分组（每行 {n} 组）",
        "q_hist_note": "该组使用了 **{n} 个量化级中的 {used} 个**；最外侧两个量化级只承载 **{edge}** 的权重。",
        "q_size": "文件字节构成",
        "q_size_caption": "载荷（编码）{payload} · 元数据（scale、zero）{meta} · FP16 张量 {fp16} · "
        "容器（Parquet 框架）{container} · 编码收益 {gain}。开销占比（元数据 + 容器）：{share}。",
        "q_downloads": "下载", "dl_parquet": "Parquet 文件", "dl_json": "JSON 记录",
        "q_cli": "在命令行运行相同设置，会输出相同的数字：",
        "fig_layers_title": "逐层权重余弦", "fig_measured": "实测", "fig_predicted": "预测",
        "fig_weights": "权重", "fig_hist_title": "{name}，第 {row} 行，第 {group} 组：权重与 {n} 个量化级",
        "fig_fp16_file": "FP16 文件", "fig_quant_file": "量化文件", "fig_breakdown_title": "字节构成（{file}）",
        "part_payload": "载荷（编码）", "part_metadata": "元数据（scale、zero）", "part_passthrough": "FP16 张量",
        "part_container": "容器", "part_codec_gain": "编码收益",
        "fig_ratio_title": "压缩比", "fig_theoretical": "{method} 理论值 {value}",
        "fig_reference": "{method}（参考报告）", "fig_cosine_title": "权重余弦",
        "fig_time_title": "量化耗时（{threads} 线程）", "fig_meta_title": "元数据占文件比例",
        "fig_pareto_title": "{y} 与每权重比特数", "fig_dominated": "被支配", "fig_front": "帕累托前沿",
        "ax_params": "参数量（对数坐标）", "ax_ratio": "FP16 字节 / 量化字节（倍）", "ax_cosine": "余弦",
        "ax_seconds": "秒（对数坐标）", "ax_meta_pct": "元数据 + 容器（占文件 %）", "ax_layer": "层",
        "ax_weight": "权重值", "ax_count": "权重数", "ax_size": "大小（{unit}）",
        "ax_bpw": "每权重比特数（文件字节 × 8 / 参数量）",
        "col_layer": "层", "col_shape": "形状", "col_params": "参数量", "col_cosine": "权重余弦",
        "col_sqnr_db": "SQNR（dB）", "col_range_std": "范围 / 标准差", "col_predicted": "预测余弦",
        "col_model": "模型", "col_fp16": "FP16 大小", "col_method": "方法", "col_size": "大小",
        "col_ratio": "压缩比", "col_ratio_ref": "压缩比（参考）", "col_theoretical": "理论压缩比",
        "col_cosine_ref": "余弦（参考）", "col_sqnr": "SQNR", "col_band": "等级", "col_time": "耗时",
        "col_time_ref": "耗时（参考）", "col_config": "配置",
        "col_pareto": "在前沿上", "col_bpw": "bpw", "col_ratio_num": "压缩比", "col_output_cosine": "输出余弦",
        "col_time_s": "耗时（秒）", "col_kind": "依据", "col_saving": "节省比例",
        "s_title": "随模型规模的缩放",
        "s_intro": "实时重现参考报告的实验：每个预设模型配每个所选方法，本次结果与参考报告并列。",
        "s_presets": "模型", "s_methods": "方法", "s_methods_help": "可自由设置选项的方法使用侧边栏中为其设定的值。",
        "s_run": "运行缩放分析", "s_progress": "正在运行缩放分析",
        "s_start": "点击 **运行缩放分析**，用所选方法量化所选模型。",
        "s_stale": "选择已改变：点击 **运行缩放分析** 更新。下方为上一次的结果。",
        "s_table": "与参考报告对照的结果",
        "s_table_caption": "带“（参考）”的列为参考报告发布的数字；其 INT8 余弦 1.0000 为四舍五入结果，"
        "其 INT2 压缩比 8.12x 超过 16 → 2 比特的 8x 上限（编码压缩所致）。",
        "s_trends": "趋势", "s_trend_compression": "压缩比", "s_trend_accuracy": "精度", "s_trend_speed": "量化耗时",
        "s_one_preset": "选择两个或以上模型以查看趋势。",
        "c_title": "配置对比",
        "c_intro": "在同一个模型（{preset}，来自侧边栏）上比较多种方法、位宽和分组大小。帕累托前沿上的配置在大小和精度上"
        "都不被其他配置同时超越。",
        "c_bits": "rtn 位宽", "c_groups": "rtn 分组大小", "c_group_fmt": "g{g}", "c_clip": "rtn 范围",
        "c_clip_on": "裁剪搜索", "c_clip_off": "min-max", "c_baselines": "其他方法（默认选项）",
        "c_baselines_help": "除 rtn 外的所有已注册方法，使用默认选项运行。",
        "c_count": "{preset} 上共 {n} 个配置。裁剪搜索对每组尝试 29 个范围，耗时是 min-max 的数倍。", "c_run": "运行对比", "c_progress": "正在 {preset} 上遍历配置",
        "c_start": "点击 **运行对比**，量化上面的每个配置。",
        "c_stale": "选择已改变：点击 **运行对比** 更新。下方为上一次的结果。",
        "c_y": "精度坐标轴", "c_front": "**{preset} 上的帕累托前沿（{n} 个）：** {configs}",
        "c_table": "全部配置", "c_table_caption": "点击列标题排序。",
        "err_input": "无法运行：{msg}。{hint}",
        "hint_sidebar": "请在侧边栏修改模型、方法或选项后重试。",
        "hint_upload": "请重新上传该文件，或在侧边栏选择其他模型。",
        "hint_policy": "请修正“量化哪些张量”中的正则表达式（Python re 语法）。",
        "hint_compare": "请在侧边栏更换模型，或修改上方的配置后重试。",
        "hint_extrapolate": "请检查自定义 config.json（Hugging Face 解码器配置）或参数量，或选择其他方法。",
        "err_source": "无法打开服务器文件：{msg}。请选择其他文件。",
        "err_upload": "无法读取该文件：{msg}。请上传其他权重文件（safetensors、pt、pth、bin、npz 或 qcore parquet 文件）。",
        "none": "无", "and": "和", "lower_better": "越低越好", "higher_better": "越高越好",
        "sb_source": "模型来源", "src_preset": "预设", "src_upload": "上传文件", "src_server": "服务器目录",
        "sb_server": "服务器权重目录中的文件", "sb_server_help": "服务器上 QCORE_WEIGHTS_DIR 指定目录下的文件。",
        "sb_upload": "你的权重", "sb_upload_help": "safetensors、pt/pth/bin（仅权重，不执行 pickle 代码）、npz 或 qcore "
        "parquet 文件；最大 {limit}。只有当前浏览器会话可见。",
        "sb_upload_caption": "最大 {limit}。文件只保存在本会话中，移除后即删除。",
        "sb_reading": "正在读取 {name} ……", "sb_upload_ok": "{n} 个浮点张量，{params} 个参数。",
        "q_no_model": "请在侧边栏上传权重文件（或选择预设模型）开始。",
        "q_model": "模型：{name}", "q_method": "方法与运行",
        "pol_head": "量化输出头", "pol_head_help": "输出头（MLP 的最后一层、语言模型的 lm_head）。命令行默认量化它，"
        "除非使用 --keep-head。",
        "pol_emb": "量化嵌入层", "pol_emb_help": "嵌入表（词、位置）默认保留 FP16，打开此项才量化（即命令行的 "
        "--quantize-embeddings）。",
        "pol_include": "只量化匹配的张量（正则）", "pol_exclude": "匹配的张量保留 FP16（正则）",
        "pol_d_2d": "二维及以上张量", "pol_d_head_q": "量化输出头", "pol_d_head_k": "输出头保留 FP16",
        "pol_d_emb_q": "量化嵌入层", "pol_d_emb_k": "嵌入层保留 FP16",
        "pol_d_include": "仅 /{pattern}/", "pol_d_exclude": "/{pattern}/ 保留 FP16",
        "pol_include_ph": "例如 mlp|self_attn", "pol_exclude_ph": "例如 lm_head|layers\\.0\\.",
        "pol_regex_help": "在每个张量名中搜索的 Python 正则表达式；留空表示不过滤。",
        "q_summary_totals": "**{n} 个张量 · {params} 个参数 · FP16 权重 {fp16}。** 当前策略量化 **{q} 个张量"
        "（{q_params} 个参数）**；保留：{kept}。",
        "q_kept_item": "{role}：{n} 个张量，{params} 个参数",
        "q_skipped": "未纳入（非浮点，不量化也不计数）：{names}。",
        "q_tensors": "全部 {n} 个张量及策略对每个张量的处理",
        "q_policy_now": "策略：{policy}。",
        "col_tensor": "张量", "col_dtype": "存储 dtype", "col_role": "策略",
        "role_quantized": "量化", "role_1d": "FP16（一维：偏置或归一化）", "role_head": "FP16（输出头）",
        "role_embedding": "FP16（嵌入层）", "role_not_included": "FP16（未包含）", "role_excluded": "FP16（已排除）",
        "role_skipped": "未纳入（非浮点）",
        "q_needs_calib": "{method} 需要校准数据，而 {model} 没有：权重文件不带可运行的模型代码。请选择无需校准的方法"
        "（rtn、int8、int2 等）运行。",
        "kpi_synth": "合成输入输出余弦",
        "kpi_synth_help": "没有模型代码，因此没有真实的输出余弦：逐层计算 cos(W x, W_hat x)，x ~ N(0, I)，再汇总所有量化层。"
        "它是忽略真实激活统计的近似指标。",
        "q_task": "任务指标", "kpi_task_ref": "FP16 {value}",
        "kpi_task_help": "模型在其留出数据上的自身质量指标（量化后）。",
        "q_task_caption": "每个指标下方：未量化（FP16）模型的同一指标。",
        "col_synth": "合成输入输出余弦", "y_synthetic_output_cosine": "合成输入输出余弦",
        "y_task": "{name}（{better}）",
        "q_sens": "逐层敏感度",
        "q_sens_intro": "对每个量化层分别以 {bits} 比特运行 rtn（沿用上方策略）：看位宽缩小时哪些层损失最大。",
        "q_sens_group": "分组大小", "q_sens_metric": "着色依据", "q_sens_run": "运行敏感度分析",
        "q_sens_start": "点击 **运行敏感度分析**，以每个位宽量化每一层。",
        "q_sens_stale": "模型、分组大小或策略已改变：点击 **运行敏感度分析** 更新。下方为上一次的结果。",
        "q_sens_progress": "{preset} 的敏感度", "q_sens_empty": "当前策略没有选中任何要量化的张量。",
        "q_sens_caption": "rtn，非对称 min-max，{group}。两种视图都是越高越好。",
        "fig_bits": "{b} 比特", "fig_sens_sqnr_db": "SQNR（dB）", "fig_sens_weight_cosine": "权重余弦",
        "fig_sens_title": "按层和位宽的{metric}", "ax_bits": "rtn 编码位宽",
        "c_policy": "策略（来自量化页）：{policy}。",
        "c_no_calib": "需要校准数据的方法未列出：该模型没有可运行的代码。",
        "x_title": "外推到真实架构",
        "x_intro": "按公开配置的精确张量形状：按张量类别给出大小，FP16 的嵌入层、输出头和归一化层按实际存储计入；精度由预设模型上"
        "实测的层外推；内存包含 KV 缓存。数字与 `python -m qcore extrapolate --json` 相同。",
        "x_archs": "架构", "x_methods": "方法",
        "x_methods_help": "来自方法注册表；rtn 以外的方法使用侧边栏中为其设定的选项。",
        "x_custom": "自定义架构", "x_custom_none": "无", "x_custom_config": "config.json", "x_custom_params": "参数量",
        "x_policy_help": "关闭（默认）：保留 FP16，与多数部署一致。",
        "x_config_file": "上传 Hugging Face config.json", "x_config_text": "……或直接粘贴",
        "x_params": "参数量（十亿）", "x_params_help": "参数量约为此值的通用 Llama 结构（3.2 万词表，输出头不共享）。",
        "x_run": "外推", "x_progress": "正在预设模型上拟合精度并计算架构大小", "x_step_fit": "拟合 {label}",
        "x_start": "点击 **外推**。大小计算很快；每个方法的精度拟合会量化三个预设模型一次（有缓存）。",
        "x_stale": "选择已改变：点击 **外推** 更新。下方为上一次的结果。",
        "x_sizes": "大小与外推精度",
        "x_sizes_caption": "所有数字均为外推（按架构计算，而非在其上实测）。压缩比 = FP16 文件字节 / 量化文件字节，计入全部存储内容。",
        "x_why": "**{arch} · {label}：** {size} 文件中有 **{share}** 是 FP16 的{kinds}（{kept}），因此实际压缩比是 **{ratio}**，"
        "而不是仅按 {bits} 比特编码计算的 {ideal}。若一并量化：{alt}。",
        "x_fit": "精度：实测层与外推趋势",
        "x_fit_y": "坐标轴", "x_fit_caption": "实心点：在预设模型上实测的层。虚线：拟合趋势 SQNR = a + b·log10(ln n)，延伸到目标架构的"
        "行长度（空心菱形，外推值）；阴影带为 ±（回测误差 + 2 × 拟合残差）。",
        "x_backtest": "**{label}**：回测（不用 large 预设拟合，再预测它）误差 {db} dB，即余弦 {cos}；误差带 ±{band} dB；"
        "{n} 个层上的拟合残差 {res} dB。",
        "x_fit_failed": "**{label}**：无法拟合精度（{msg}）。",
        "x_memory": "放得下吗？内存假设分析", "x_context": "上下文（token）", "x_batch": "批大小",
        "x_kv": "KV 缓存", "x_over_pct": "额外开销（权重的 %）", "x_over_gib": "+ 固定开销（GiB）",
        "x_over_help": "激活、分配器余量和 CUDA 上下文：由你设定的经验值，而非实测。",
        "x_memory_caption": "总计 = 权重 + KV 缓存（2 × 层数 × KV 头数 × 头维度 × token 数 × 批大小）+ 权重的 {pct}% + "
        "{fixed} GiB。✓：放得下，并给出剩余空间；✗：差多少。",
        "fits_yes": "✓ 剩余 {room}", "fits_no": "✗ 差 {room}",
        "x_reference": "与参考报告的预测对照",
        "x_ref_agree": "**{arch} · {label}：** 本页 {ratio} 与报告一致。",
        "x_ref_fp16": "**{arch} · {label}：** 报告假设每个参数都按该方法的位宽存储，但 {arch} 的 {label} 文件中有 {share} 是 "
        "FP16 的{kinds}，因此实际压缩比是 **{ratio}**，而不是 {ref}。若一并量化：{alt}。",
        "x_ref_meta": "**{arch} · {label}：** 本页 {ratio}，报告为 {ref}：scale、zero 和容器占文件的 {meta}。",
        "x_ref_cos_inside": "余弦 {cos}（外推）在报告的 {ref} 范围内。",
        "x_ref_cos_below": "余弦 {cos}（外推）低于报告的 {ref}。",
        "x_ref_cos_above": "余弦 {cos}（外推）高于报告的 {ref}。",
        "x_reference_caption": "报告的大小使用其自身单位（“MB”“GB”）；本页为二进制单位。报告中的“AngelSlim 2-bit”与 seq "
        "对照，而这里 seq 的拟合仅为训练后量化（预设模型上没有 QAT）。",
        "x_cli": "命令行上的相同数字",
        "col_arch": "架构", "col_cos_x": "权重余弦（外推）", "col_cos_band": "余弦区间",
        "col_weights": "权重", "col_kv": "KV 缓存", "col_overhead": "额外开销", "col_total": "总计",
        "col_size_ref": "大小（参考）", "col_saving_ref": "节省（参考）",
        "kind_embedding": "嵌入层", "kind_attention": "注意力", "kind_mlp": "MLP", "kind_norm": "归一化层",
        "kind_head": "输出头", "kind_container": "容器",
        "fig_kind_title": "按张量类别的文件大小", "ax_gib": "大小（GiB）",
        "fig_fit_band": "{label} 误差带", "fig_fit_line": "{label} 拟合（虚线：外推）",
        "fig_fit_measured": "{label} 实测（预设）", "fig_fit_hover_measured": "{label} · 实测层",
        "fig_fit_target": "{label} · {arch}（外推）", "fig_fit_hover_target": "{label} · {arch} · 外推",
        "fig_fit_edge": "实测最大行长度 ", "fig_fit_title": "逐层{y}与行长度", "ax_row_len": "行长度 n（输入列数，对数坐标）",
        "r_title": "缩放分析报告",
        "r_intro": "与命令行（python -m qcore report --out DIR）生成的 Markdown 报告完全相同，语言跟随侧边栏。",
        "r_start": "报告基于缩放分析的运行结果。尚未运行：为全部预设模型以 int8 和 int2 生成报告。",
        "r_run": "生成报告", "r_basis": "模型：{presets} · 方法：{methods}（来自缩放分析页）。",
        "r_dl_md": "Markdown", "r_dl_csv": "CSV",
    },
}  # fmt: skip


def carry_choices() -> None:
    """on_change of the language radio: write each translated choice back, so it is shown in the new labels."""
    for key in TRANSLATED_CHOICES:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def lang() -> str:
    """The language the sidebar chose ('en' or 'zh')."""
    value = st.session_state.get("lang", "en")
    return value if value in TEXT else "en"


def t(key: str, **fields) -> str:
    text = TEXT[lang()].get(key) or TEXT["en"][key]
    return text.format(**fields) if fields else text


def t_or(key: str, fallback: str) -> str:
    """A catalog text where there is one (in the chosen language), else the registry's own text."""
    text = TEXT[lang()].get(key)
    if text is None:
        text = TEXT["en"].get(key, fallback) if lang() == "en" else fallback
    return text


def band(name: str | None) -> str:
    return t(f"band_{name}") if name else t("na")
