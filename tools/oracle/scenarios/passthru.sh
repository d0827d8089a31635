# Shared flow of the pass-through scenarios (sourced): patch FUNCS with
# lpc_pt, capture at the first retry, let the kernel signal, record again.
# $DEFAULT_FUNCS = the scenario's function list unless lpc_funcs overrides it.
patch_passthru "$DEFAULT_FUNCS" || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
after signals lpc_pt
finish
