@echo off
rem Shell completion for `kubectl etcd` through kubectl's plugin completion (kubectl 1.26+):
rem kubectl runs this with the words after "etcd" and the word being completed; the
rem kubectl-etcd.exe next to it answers in cobra's completion format.
"%~dp0kubectl-etcd.exe" __complete %*
