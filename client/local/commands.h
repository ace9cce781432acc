// The `shrink` subcommands that need the local runtime (LibTorch): they load models,
// or run a coordinator and workers inside this process. shrink-torch runs them; each
// takes the arguments after its name and returns the exit code (0 ok, 2 usage, 1 failure).
#pragma once

namespace shrink::client::local {

// `shrink compress`: embedded (in-process coordinator + workers), or on --coordinator.
int RunCompress(int argc, char** argv);
// `shrink train`: trains a reference model.
int RunTrain(int argc, char** argv);
// `shrink pretrain`: pretrains a transformer on a general-text corpus.
int RunPretrain(int argc, char** argv);
// `shrink eval`: measures a model's accuracy, bytes and latency.
int RunEval(int argc, char** argv);
// `shrink init`: writes a randomly initialised model of a known shape.
int RunInit(int argc, char** argv);
// `shrink apply`: applies one policy file to a model and measures the result.
int RunApply(int argc, char** argv);
// `shrink export`: writes model.onnx, the tokenizer files and export.json for ONNX Runtime.
int RunExport(int argc, char** argv);
// `shrink predict`: labels, generated text or image classes in LibTorch or ONNX Runtime.
int RunPredict(int argc, char** argv);
// `shrink demo`: trains the reference CNN once and compresses it with each search.
int RunDemo(int argc, char** argv);

// Runs the local command argv[1] with the arguments after it (argv is the whole command line).
int RunLocalCommand(int argc, char** argv);

}  // namespace shrink::client::local
