"""The text catalog: every label the dashboard shows, in English and 中文.

`t(key, **fields)` looks the key up in the language the sidebar chose (English where a translation is missing)
and fills in `{fields}`. `t_or(key, fallback)` is for texts the registry supplies (method summaries, option
help), which the catalog may translate.
"""

from __future__ import annotations

import streamlit as st

LANGS = {"en": "English", "zh": "中文"}

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
        "err_input": "Cannot run this: {msg}. Change the model, method or options in the sidebar and try again.",
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
        "q_start": "Nothing has run yet. The default is INT2 on the large model, the reference report's hardest "
        "case: press **Run** (it takes a few seconds on a CPU).",
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
        "fig_extrap_title": "Artifact size against parameter count", "fig_extrapolated": "{method} (extrapolated)",
        "fig_measured_m": "{method} (measured)",
        "ax_params": "parameters (log scale)", "ax_ratio": "FP16 bytes / quantized bytes (x)",
        "ax_cosine": "cosine", "ax_seconds": "seconds (log scale)", "ax_meta_pct": "metadata + container (% of file)",
        "ax_layer": "layer", "ax_weight": "weight value", "ax_count": "weights", "ax_size": "size ({unit})",
        "ax_bpw": "bits per weight (file bytes × 8 / params)", "ax_size_gib": "size (GiB, log scale)",
        # tables
        "col_layer": "Layer", "col_shape": "Shape", "col_params": "Params", "col_cosine": "Weight cosine",
        "col_sqnr_db": "SQNR (dB)", "col_range_std": "Range / std", "col_predicted": "Predicted cosine",
        "col_model": "Model", "col_fp16": "FP16 size", "col_method": "Method", "col_size": "Size",
        "col_ratio": "Ratio", "col_ratio_ref": "Ratio (ref)", "col_theoretical": "Theoretical",
        "col_cosine_ref": "Cosine (ref)", "col_sqnr": "SQNR", "col_band": "Band", "col_time": "Time",
        "col_time_ref": "Time (ref)", "col_config": "Configuration",
        "col_pareto": "On front", "col_bpw": "bpw", "col_ratio_num": "Ratio", "col_output_cosine": "Output cosine",
        "col_time_s": "Time (s)", "col_kind": "Basis", "col_saving": "Saving", "col_saved": "Saved",
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
        "x_title": "Extrapolate to larger models",
        "x_basis": "Naive basis: size = parameters × the bits per weight measured on the large preset. It assumes "
        "the target is built like that MLP; real models keep embeddings, norms and heads in FP16, which this "
        "ignores. An architecture-exact extrapolation comes later.",
        "x_methods": "Methods", "x_methods_help": "Methods with free options use the sidebar's values for them.",
        "x_custom": "Custom size (billions of parameters)", "x_custom_label": "Custom ({b}B)",
        "x_run": "Measure and extrapolate", "x_progress": "Measuring bits per weight on {preset}",
        "x_start": "Press **Measure and extrapolate** to quantize the {preset} preset with each method.",
        "x_stale": "The methods changed since this run: press **Measure and extrapolate** to update.",
        "x_chart_caption": "Solid points: measured on {preset}. Dashed: extrapolated by params × measured bpw.",
        "x_table": "Sizes and savings", "x_table_caption": "MiB and GiB are binary (2^20 and 2^30 bytes).",
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
        "err_input": "无法运行：{msg}。请在侧边栏修改模型、方法或选项后重试。",
        "err_internal": "实验室内部出错（{kind}: {msg}）。请尝试其他设置；如果问题持续，请用命令行"
        "（python -m qcore run ...）运行相同设置并反馈其输出。",
        "y_weight_cosine": "权重余弦", "y_output_cosine": "输出余弦",
        "q_title": "量化模型",
        "q_intro": "在侧边栏选择模型和方法，点击运行，查看量化的效果：压缩比与理论值、精度、耗时，以及每个字节的去向。",
        "q_choice": "**模型：** `{preset}` · **方法：** `{method}` · **选项：** {options}",
        "q_codec": "Parquet 编码", "q_codec_help": "'none' 给出主压缩比；'zstd' 把编码器的额外收益单独列在字节构成中。",
        "q_run": "运行", "q_progress": "正在用 {method} 量化 {preset}",
        "q_start": "尚未运行。默认是大模型上的 INT2，即参考报告中最难的情形：点击 **运行**（CPU 上需几秒）。",
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
        "fig_extrap_title": "文件大小与参数量", "fig_extrapolated": "{method}（外推）", "fig_measured_m": "{method}（实测）",
        "ax_params": "参数量（对数坐标）", "ax_ratio": "FP16 字节 / 量化字节（倍）", "ax_cosine": "余弦",
        "ax_seconds": "秒（对数坐标）", "ax_meta_pct": "元数据 + 容器（占文件 %）", "ax_layer": "层",
        "ax_weight": "权重值", "ax_count": "权重数", "ax_size": "大小（{unit}）",
        "ax_bpw": "每权重比特数（文件字节 × 8 / 参数量）", "ax_size_gib": "大小（GiB，对数坐标）",
        "col_layer": "层", "col_shape": "形状", "col_params": "参数量", "col_cosine": "权重余弦",
        "col_sqnr_db": "SQNR（dB）", "col_range_std": "范围 / 标准差", "col_predicted": "预测余弦",
        "col_model": "模型", "col_fp16": "FP16 大小", "col_method": "方法", "col_size": "大小",
        "col_ratio": "压缩比", "col_ratio_ref": "压缩比（参考）", "col_theoretical": "理论压缩比",
        "col_cosine_ref": "余弦（参考）", "col_sqnr": "SQNR", "col_band": "等级", "col_time": "耗时",
        "col_time_ref": "耗时（参考）", "col_config": "配置",
        "col_pareto": "在前沿上", "col_bpw": "bpw", "col_ratio_num": "压缩比", "col_output_cosine": "输出余弦",
        "col_time_s": "耗时（秒）", "col_kind": "依据", "col_saving": "节省比例", "col_saved": "节省大小",
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
        "x_title": "外推到更大的模型",
        "x_basis": "简单外推：大小 = 参数量 × 在 large 预设上实测的每权重比特数。它假设目标模型与该 MLP 结构相同；"
        "真实模型会把嵌入层、归一化层和输出头保留为 FP16，此处未计入。按真实架构的精确外推将在后续提供。",
        "x_methods": "方法", "x_methods_help": "可自由设置选项的方法使用侧边栏中为其设定的值。",
        "x_custom": "自定义规模（十亿参数）", "x_custom_label": "自定义（{b}B）",
        "x_run": "实测并外推", "x_progress": "正在 {preset} 上实测每权重比特数",
        "x_start": "点击 **实测并外推**，用每个方法量化 {preset} 预设。",
        "x_stale": "方法已改变：点击 **实测并外推** 更新。",
        "x_chart_caption": "实心点：在 {preset} 上实测。虚线：按参数量 × 实测 bpw 外推。",
        "x_table": "大小与节省", "x_table_caption": "MiB 与 GiB 为二进制单位（2^20 与 2^30 字节）。",
        "r_title": "缩放分析报告",
        "r_intro": "与命令行（python -m qcore report --out DIR）生成的 Markdown 报告完全相同，语言跟随侧边栏。",
        "r_start": "报告基于缩放分析的运行结果。尚未运行：为全部预设模型以 int8 和 int2 生成报告。",
        "r_run": "生成报告", "r_basis": "模型：{presets} · 方法：{methods}（来自缩放分析页）。",
        "r_dl_md": "Markdown", "r_dl_csv": "CSV",
    },
}  # fmt: skip


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
