"""Benchmark: the ablation study on the SYNTHETIC 600-video demo set; prints JSON.

Claim measured (the settled target, non-inferiority): the full model (cross-modal attention over keyframes,
knowledge-enriched text and GNN entity embeddings, three joint heads) is never clearly worse than an ablation on a
task's headline metric (disease macro-F1, popularity Spearman, quality QWK) on the held-out test split — no full −
variant difference more than two standard errors of the seed mean below zero, over ``--seeds`` (two or more) — and
training + evaluation of the full model take under 20 minutes on the development CPU (the whole ablation is timed
too, and may take longer). The table (stderr) and the JSON (stdout) both lead with that reading; the plain "at least
as good on the means" reading is reported beside it. The rounds below record how the options were chosen; the
options they rejected are retired from the code (``docs/fusion-history.md``), so their ``--set`` lines no longer run.

    python bench/fusion_demo.py [--videos 600] [--seed 0] [--seeds 0,1,2] [--epochs N] [--patience N]
                                [--width 64] [--dropout 0.2] [--lr 2e-3] [--variant NAME ...]
                                [--visual-backbone B] [--visual-weights W] [--text-model M] [--keyframes 4]
                                [--out DIR]
                                [--select-on test|val] [--split-per-seed] [--folds K] [--predictions]
                                [--set FIELD=VALUE ...]
    python bench/fusion_demo.py --merge A.json --merge B.json      # one report from --predictions processes run
                                                                   # alike (else refused, naming what differs) that
                                                                   # split the variants, the seeds or both

Makes the demo set with ``ovp demo-data``'s library function when it is missing. Features go through the feature
cache (``OVP_CACHE_DIR``), so a second run measures training and evaluation only; ``seconds.features`` says which it
was. The encoders are the settings' (EfficientNet-Lite0 with ImageNet weights, bge-small-zh-v1.5 by default), with
K = 4 keyframes for time; the JSON records which (``encoders``). The tables below were measured with the earlier
encoders (ResNet-18 with random weights, all-MiniLM-L6-v2): ``--visual-backbone resnet18 --visual-weights random
--text-model all-MiniLM-L6-v2`` runs them again. Every number is on SYNTHETIC data.

``--select-on val`` scores the variants on the validation split instead (the test split is never scored), and
``--set FIELD=VALUE`` changes a ``FusionConfig`` field for every variant: that is how the joint-training options were
chosen, without looking at the test split. The full model, ``--epochs 50``, seeds 0,1,2, validation split (89 videos;
the same split early stopping uses, so every option is equally optimistic), means of disease macro-F1 / popularity
Spearman / quality QWK and their sum (per-seed sums in brackets):

=================================================  =====  =====  =====  ==================================
learned uncertainty weighting (the old default)    0.571  0.148  0.508  1.227 (1.252, 1.043, 1.385)
equal weighting (chosen, now the default)          0.623  0.148  0.490  1.262 (1.374, 1.089, 1.322)
uncertainty + ``detach_popularity``                0.602  0.151  0.507  1.260 (1.401, 1.203, 1.177)
equal + ``detach_popularity``                      0.612  0.123  0.521  1.256 (1.345, 1.255, 1.168)
equal + ``disease_loss=sum`` (seed 0 only)         0.681  0.159  0.445  1.286
equal + sum + ``detach_popularity`` (seed 0 only)  0.667  0.188  0.376  1.231
=================================================  =====  =====  =====  ==================================

A second round (2026-11-23; the full model on the same validation split, seeds 0, 1, 2, width 64 unless stated),
made by a scratch script calling ``run_ablation(..., eval_split="val")`` on features pickled once, extracted before
the linker's glossed-Chinese fallback existed; ``--select-on val --variant full --set modality_dropout=0.2 …`` runs
the same comparison on today's features:

=====================================================================  =====  =====  =====  =====
equal weighting (the default above)                                    0.623  0.148  0.490  1.261
+ ``modality_dropout=0.2``                                             0.586  0.189  0.553  1.328
+ ``modality_dropout=0.3``                                             0.584  0.143  0.563  1.290
+ modality dropout 0.2, ``disease_loss=sum``                           0.665  0.205  0.428  1.298
+ modality dropout 0.2, ``task_weights={"disease": 4}``                0.641  0.149  0.520  1.310
+ the same, metadata skip + detached linear popularity head            0.654  0.084  0.543  1.281
+ modality dropout 0.2, disease ×4, ``task_readout``                   0.619  0.172  0.545  1.336
+ modality dropout 0.2, disease ×4, ``task_readout``, width 128        0.659  0.108  0.632  1.399
single-task heads, modality dropout 0.2, disease ×4 (for comparison)   0.681  0.147  0.594  1.422
defaults, width 128, today's features (glossed-Chinese linking)        0.648  0.156  0.626  1.430
the same + ``mean_pool`` (tried after the first test run, below)       0.651  0.155  0.573  1.379
=====================================================================  =====  =====  =====  =====

After the first test run with ``--split-per-seed`` (README), on the validation splits of seeds 0, 1, 2 each drawn
by its seed, full model at the defaults with width 128: 0.620 / 0.159 / 0.608 (sum 1.387, best epochs 23, 9, 10);
with ``score_window=6``: 0.633 / 0.151 / 0.547 (1.331, best epochs 38, 11, 13) — not adopted.

The last full-model row of the table became the defaults (``FusionConfig``: modality dropout 0.2, disease loss ×4, per-task
readouts; ``--width 128`` here). Popularity Spearman on these 89 videos is mostly noise: a least-squares fit on the
metadata alone reaches 0.12 on this validation split and 0.30 on the test split. Single-task numbers on validation
are optimistic, each head being selected on its own metric of the same split.

A third round (2026-11-23, after the second test run): every test split of training seeds 0–4 had then been
scored, so options were chosen on a **second SYNTHETIC set** made only for development (``ovp demo-data --videos 600
--seed 1``; other topic prior and topic reach, other videos), whose test splits may be looked at freely, by a scratch
script calling ``run_ablation(..., eval_split="test", split_per_seed=True)`` on its features: width 128, training
seeds 0, 1, 2, means of disease macro-F1 / popularity Spearman / quality QWK on that set's test splits:

===========================================================================  =====  =====  =====
full, the defaults then (no refit)                                           0.568  0.169  0.548
single-task heads, no refit (for comparison)                                 0.567  0.299  0.534
concatenation, no refit (for comparison)                                     0.508  0.155  0.610
full + ``head_refit_epochs=20`` (continue from the joint heads)              0.578  0.171  0.614
full + refit, ``head_refit_init=fresh``                                      0.592  0.169  0.573
single-task heads + refit (for comparison)                                   0.579  0.301  0.535
concatenation + refit (for comparison)                                       0.536  0.112  0.635
full + refit + ``popularity_skip``                                           0.580  0.191  0.491
full + refit + ``popularity_skip`` + linear popularity head                  0.552  0.151  0.559
full + refit + ``popularity_skip`` + ``detach_popularity``                   0.577  0.195  0.547
full + refit + popularity loss ×0.25 (chosen, now the default)               0.589  0.235  0.621
full + refit + popularity loss ×0.1                                          0.569  0.127  0.574
full + refit + popularity ×0.25 + ``mean_pool``                              0.563  0.171  0.560
full + popularity ×0.25, ``head_refit_epochs=50`` (after the seeds 5–9 run)  0.589  0.235  0.625
===========================================================================  =====  =====  =====

The comparison rows were trained with popularity loss ×1 (single-task models do not see the weight). The last
row was run after the reported table (README), because there the full model's quality refit kept epochs 16–20 of
20: on this set a 50-epoch cap moves quality QWK by 0.004 and leaves the rest unchanged, so the cap is not what
holds quality back. Per seed the spread is wide (popularity 0.15–0.34 across the three seeds of the chosen row), so a difference of a
few hundredths here is noise; ×0.25 beating both ×1 and ×0.1 says the popularity weight matters less than the refit.
A metadata-only ridge regression reaches popularity Spearman 0.28 on these test splits (0.42 on their validation
splits): engagement there is mostly hidden virality plus the author's audience. Per-epoch traces of the full model
(seeds 0 and 1 of this set, validation and test scored every epoch, refit on) showed two things: after the joint
checkpoint, training the quality head and readout alone went on raising validation QWK (the refit kept its epochs
6 and 11), and popularity Spearman on validation moved independently of test (seed 0: validation 0.3–0.48
throughout, test falling from 0.25 at epoch 9 to about 0 from epoch 15 on).

A fourth round (2026-11-23, after the seeds 5–9 run), aimed at the one real gap there — single-task heads ahead on
quality. Options were compared on two sets no test result of the reported set was read from: the **validation**
splits of the reported set (``--seed 0``; training seeds 0–4, each its own split) and the development set's test
splits (training seeds 0, 1, 2); the same scratch-script route as the third round. Disease macro-F1 / popularity
Spearman / quality QWK, means over seeds:

===================================================  =====================  =====================
option (full model unless stated)                    reported set, val 0–4  development set, test
===================================================  =====================  =====================
the defaults                                         0.656  0.260  0.652    0.589  0.235  0.621
quality loss ×2                                      0.651  0.218  0.669    0.566  0.256  0.573
quality loss ×0.5                                    0.666  0.241  0.627    —
``task_attention`` (per-task cross-modal blocks)     0.665  0.238  0.673    0.584  0.254  0.556
``head_refit_epochs=50``                             0.657  0.260  0.652    0.589  0.235  0.625
single-task heads (for comparison)                   0.665  0.276  0.684    0.579  0.301  0.535
===================================================  =====================  =====================

On the reported set single-task heads are ahead on all three tasks on validation too, so the seeds 5–9 test result
is not a split accident; on the development set the joint model is far ahead on quality (0.621 against 0.535). What
narrowed the gap on the first (quality ×2, per-task attention) widened the loss on the second by 0.05–0.07, so
neither was adopted: on these two synthetic sets whether sharing the trunk helps quality depends on the set, and no
option found helps on both. ``task_attention`` also takes about 2.7× the training time (1,304 s against 485 s for the
five seeds, two processes side by side). The 50-epoch refit changed nothing on the reported set: patience stopped
every refit before epoch 20 there. Development-set numbers for the defaults reproduce the third round's exactly
(0.589 / 0.235 / 0.621) on a fresh machine.

Declared before it started, with the defaults unchanged: training seeds 10–14 on the reported set (each its own
split, never scored before), every variant, ``--seeds 10,11,12,13,14 --split-per-seed --epochs 50``; whatever it
shows goes into the README beside seeds 5–9. It showed (test splits, full / single-task heads): disease macro-F1
0.711 / 0.692, popularity Spearman 0.201 / 0.188, quality QWK 0.541 / 0.551; the full model was best on disease and
popularity and behind single-task heads on quality only, as on seeds 5–9.

A fifth round (2026-11-23, a later session), again on the reported set's **validation** splits only (training seeds
0–4, each its own split; the same scratch-script route), the full model; disease macro-F1 / popularity Spearman /
quality QWK, means over the five seeds:

============================================================================  =====  =====  =====
the defaults (fourth round)                                                   0.656  0.260  0.652
``gradient_surgery=pcgrad`` (PCGrad on the shared trunk)                      0.648  0.193  0.649
width 256 instead of 128                                                      0.645  0.228  0.662
``selection_tasks=["disease", "quality"]`` (popularity left out of selection)  0.662  0.173  0.633
single-task heads (fourth round, for comparison)                              0.665  0.276  0.684
============================================================================  =====  =====  =====

None comes near single-task heads on quality, and none was adopted or taken to the development set; PCGrad also
trains about 1.4× slower (697 s against 485 s for the five seeds, one process beside another). Both new options stay
in ``FusionConfig``, off, with tests.

A sixth round (2026-11-23, a later session on a fresh machine), on both selection sets again: the reported set's
validation splits (training seeds 0–4) and the development set's test splits (seeds 0, 1, 2), by the same
scratch-script route (``run_ablation(..., split_per_seed=True)`` on pickled features). **The features extracted on
this machine differ from the earlier sessions'**: the defaults now give 0.672 / 0.228 / 0.642 and 0.590 / 0.245 /
0.586 where the fourth round had 0.656 / 0.260 / 0.652 and 0.589 / 0.235 / 0.621, and the code of commit 3a64b99 (before
PCGrad) gives the same on these features as today's, so the code did not move them. Training on given features, and
``ovp kg embed`` on this machine, are bit-for-bit repeatable; the cause across machines (floating-point differences in
feature extraction on another CPU, presumably) was not isolated. So every option below is compared with the defaults
re-run on the same features:

=====================================================================  =====================  =====================
option (full model unless stated)                                      reported set, val 0–4  development set, test
=====================================================================  =====================  =====================
the defaults, re-run                                                   0.672  0.228  0.642    0.590  0.245  0.586
``refit_attention`` (each task refits its own copy of the joint        0.672  0.249  0.662    0.580  0.181  0.574
cross-modal blocks)
``quality_skip`` (a fixed ridge on mean keyframe and token features    0.657  0.201  0.696    0.609  0.160  0.651
beside the ordinal quality head)
single-task heads, the defaults re-run                                 0.659  0.255  0.691    0.573  0.276  0.573
single-task heads + ``refit_attention``                                0.660  0.280  0.694    —
single-task heads + ``quality_skip``                                   0.659  0.255  0.708    0.573  0.276  0.670
=====================================================================  =====================  =====================

``quality_skip`` came from a diagnosis: a ridge regression of GQS on the mean keyframe and mean token features (no
fusion model at all; penalty 300 on standardised inputs) reaches QWK 0.648 on the reported set's validation splits
and 0.681 on the development set's test splits — above the joint model on both and above every fusion model on the
second. Quality is a proportion (how much of a video is clinical footage, how many cue phrases a caption has), which
attention pools keep badly. With the ridge beside the head the full model's quality QWK rose on all 8 seeds (+0.009 to
+0.14), but popularity Spearman fell on 5 of 8; single-task heads gain from the same skip too (0.691 -> 0.708 and
0.573 -> 0.670), so the full model's quality gap to them narrows on the reported set (-0.049 -> -0.012) but opens on
the development set (+0.013 -> -0.019); paired per seed the full model with the skip was at least as good as
single-task heads on quality on only 1 of 5 and 1 of 3 seeds, and behind on popularity on the development set on every
seed. ``refit_attention`` (joint training, then per-task fine-tuning of the attention,
as MT-DNN fine-tunes its shared encoder; joint phase bit-identical to the defaults') helped on the reported set only,
and trained ~1.6× slower (800 s against 500 s for the five seeds). Fine-tuning a whole copy of the model per task
after joint training (scratch code only) moved the joint model on seeds 0–2 from 0.646 / 0.246 / 0.633 to 0.651 /
0.268 / 0.644 — stopped after three seeds for time. Neither option was adopted and no new test run was declared: none
beats single-task heads on the selection sets. Both stay in ``FusionConfig``, off, with tests.

A seventh round (2026-11-23, the session after the sixth, same machine and features), by the same scratch-script
route: born-again multi-task training (``distill``; Clark et al., "BAM! Born-Again Multi-Task Networks", ACL 2019).
The single-task models — exactly what the single-task ablation trains — are trained first and become teachers; the
joint model learns from λ·label + (1 − λ)·teacher prediction, λ rising linearly from 0 at the first epoch to 1 at
``distill_anneal_epochs`` (default ``epochs``, 50). ``run_ablation`` trains each single-task model once per seed and
reuses it, so the single-task rows below are the teachers of the distilled rows beside them. The development set was
also run on seeds 3 and 4 for the two distilled-with-skip rows (second figures, with single-task heads + skip on the
same seeds at 0.621 / 0.202 / 0.705):

=====================================================================  =====================  =====================
option (full model unless stated)                                      reported set, val 0–4  development set, test
=====================================================================  =====================  =====================
the defaults, re-run (sixth round)                                     0.672  0.228  0.642    0.590  0.245  0.586
``distill``                                                            0.662  0.228  0.671    0.577  0.249  0.622
single-task heads (its teachers; reproduce the sixth round exactly)    0.659  0.255  0.691    0.573  0.276  0.573
``distill`` + ``quality_skip``                                         0.662  0.253  0.706    0.568  0.282  0.649
  development set, seeds 3–4                                                                  0.585  0.170  0.708
``distill`` + ``quality_skip`` + ``distill_anneal_epochs=20``          0.662  0.263  0.715    0.595  0.222  0.648
  development set, seeds 3–4                                                                  0.612  0.165  0.679
single-task heads + ``quality_skip`` (their teachers), today's code    0.659  0.255  0.703    0.573  0.276  0.654
=====================================================================  =====================  =====================

- ``distill`` alone raised the joint model's quality QWK on both selection sets (+0.029 and +0.036 over the
  defaults) without the fall in popularity that ``quality_skip`` brought (0.228 → 0.228, 0.245 → 0.249), but on the
  reported set it stays behind single-task heads on quality (−0.020, ahead on 1 of 5 seeds) and on both sets behind
  on popularity (−0.027 each).
- With ``quality_skip`` too (and the teachers then have the skip as well) the gap is gone on the reported set's
  validation splits: +0.003 / −0.002 / +0.003 (full at least as good on 3, 2 and 4 of 5 seeds); on the development
  set, over seeds 0–4, −0.017 / −0.009 / −0.002 (at least as good on 2 of 5 seeds for each) — parity on quality,
  slightly behind on disease.
- Annealing to the labels by epoch 20 instead of 50 (early stopping kept the 50-epoch-horizon students at epochs
  8–34, where the teachers still give 33–86 % of the targets): ahead of single-task heads on all three on the
  reported set's validation splits (+0.003 / +0.008 / +0.012; at least as good on 3 of 5 seeds for each), but on the
  development set over seeds 0–4 +0.009 / −0.047 / −0.014 (3, 1 and 1 of 5) — the fourth round's pattern
  again, better on one set and worse on the other, so the 50-epoch horizon stays.
- Cost: the distilled model trains its three teachers first: 1,464 s for the five seeds, of which the teachers took
  1,037 s, against 483 s for the joint model with the skip alone in the sixth round (not side by side): about 3×.
  An ablation with ``distill`` trains teachers for every input variant (the single-task ones are shared with the
  full model): an estimated 2.6× today's ablation time.
- **Float-level sensitivity.** The single-task + ``quality_skip`` numbers differ from the sixth round's (0.708 and
  0.670 then, 0.703 and 0.654 now) because commit 3d4be83, a tidy meant to change nothing, computes the skip's masked
  mean through a softmax over zeros: the training loss moves in the 8th digit (checked on the test suite's tiny set
  against c0d1206), and 50 epochs of training turn that into 0.001–0.055 of QWK on a seed and 0.005 and 0.016 on
  the two means. Gaps of 0.01–0.02 between two models on these sets are inside what such a perturbation alone does.

The other ablations were then trained the same way (``--set distill=true --set quality_skip=true``, each input
variant distilled from its own single-task teachers) on the reported set's validation splits, seeds 0–4, to see
whether the declared run can pass at all. Full minus variant, and on how many seeds the full model was at least as
good:

==========================================  =====================  ============  ============  ============
variant (``distill`` + ``quality_skip``)    its numbers            disease       popularity    quality
==========================================  =====================  ============  ============  ============
concatenation instead of attention          0.667  0.255  0.684    −0.004 (2/5)  −0.002 (3/5)  +0.022 (4/5)
no GNN embeddings                           0.655  0.254  0.682    +0.008 (3/5)  −0.001 (3/5)  +0.024 (4/5)
single-task heads                           0.659  0.255  0.703    +0.003 (3/5)  −0.002 (2/5)  +0.003 (4/5)
no visual (concat fusion)                   0.669  0.226  0.597    −0.007 (2/5)  +0.027 (4/5)  +0.110 (5/5)
no text                                     0.636  0.263  0.668    +0.027 (4/5)  −0.010 (2/5)  +0.038 (4/5)
==========================================  =====================  ============  ============  ============

(No knowledge enrichment was not run, for time.) With distillation the full model leads every variant run on quality,
but each of the five is ahead of it on disease or popularity by 0.001–0.010, inside what a float-level change alone does
(above): which side of zero each of those means lands on is close to a coin toss.

None of these became the default. Commit 29e23e6 declared a test run of ``--set distill=true --set
quality_skip=true`` on training seeds 15–19 for the next session; **it is withdrawn here, before anything ran** (no
test split was scored): the table above already shows the full model behind all five ablations run on disease or
popularity on the validation splits, so the run would only toss those coins again. A next option has to open a real
margin on disease and popularity, not only on quality.

An eighth round (2026-11-24) changes the measurement, not the model. On a 90-video test split the rarer diseases
have 1–5 positive videos, so one video moves disease macro-F1 by about 0.01, and every comparison above sits inside
that. ``--folds K`` cross-fits instead: each seed deals the videos into K folds, K models per variant each test one
fold (validating on the next, training on the rest), and the metrics are computed once over all the videos' pooled
predictions, with a paired bootstrap of full − variant over videos (``AblationReport.bootstrap``).
**Declared here, before it runs, and to be run once:** the defaults, unchanged, on a third SYNTHETIC set made for it
and never used before (``ovp demo-data .ovp/bench/fresh600 --videos 600 --seed 2``), five folds, seed 2, as two
processes merged:

    python bench/fusion_demo.py --seed 2 --out .ovp/bench/fresh600 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 2 --out .ovp/bench/fresh600 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

Whatever it shows goes into the README as the table of record.

It ran once (2026-11-24) and is in the README: full 0.682 / 0.170 / 0.547 (disease macro-F1 / popularity Spearman /
quality QWK over all 600 videos pooled); single-task heads 0.713 / 0.176 / 0.587 lead it on all three, no-enrichment
leads on popularity and quality (0.185, 0.553), concatenation on quality (0.551). Not met. Two more findings from the
same session, both on the development set (``--seed 1``), by scratch scripts on its pickled features:

- The cross-fitted ablation there (5 folds, seed 0, the defaults): full 0.644 / 0.208 / 0.574; no-GNN 0.664 on
  disease, no-text 0.249 on popularity, concatenation 0.583 on quality are ahead of it; single-task heads
  (0.638 / 0.207 / 0.548) are behind on all three — the fourth round's pattern again, the two sets disagreeing.
- **Training randomness is the larger noise.** The full model on the same five folds with training seeds 0, 100 and
  101: 0.644 / 0.603 / 0.621 on disease, 0.208 / 0.204 / 0.183 on popularity, 0.574 / 0.560 / 0.552 on quality. The
  paired bootstrap over videos put the seed-0 − seed-100 disease difference (0.041) at [+0.016, +0.067]: it does not
  see this noise, and a comparison of configurations needs several training seeds per variant (``--folds 5 --seeds
  a,b,c``, K × seeds models per variant). One seed of the whole cross-fitted ablation took 3,292 s of training on
  this CPU (the two processes' sums), so three seeds are about 2.7 hours of one core, 1.4 hours as two processes.
- A second replicate on the declared set after it (``--seed 2 --seeds 3 --folds 5 --variant full --variant
  single_task``): full 0.700 / 0.135 / 0.501, single-task heads 0.721 / 0.136 / 0.512, ahead on all three again.
- Why disease stops near 0.65–0.70: 32 % of the development set's true disease labels are diseases the caption's
  entity linking did not find, and every model recovers about 3 % of them at the 0.5 threshold (ranking AUC
  0.53–0.60 on those pairs), while a logistic regression on the mean keyframe feature ranks them at AUC 0.71. The
  visual signal is there but weak: adding that probe's logit to the full model's (late fusion, weights 0.5–2) did not
  raise macro-F1 (0.644 → 0.641–0.643, lower at larger weights), so it was not pursued further.

A ninth round (2026-11-24) changes the model, after a diagnosis on the development set (``--seed 1``, its five
cross-fitted folds of seed 0, scratch scripts on its pickled features): linear probes fitted on each fold's training
videos beat the fusion model on every task.

- **Disease.** "Predict exactly the labels the caption's linked entities name" gives macro-F1 0.75 over the 600
  videos; the full model 0.644. Its head on the fused embedding missed 74 of the 509 named true labels and predicted
  108 labels no entity named, 99 of them wrongly: pooling the entities and tokens into one vector loses which label
  was named. → ``disease_mentions``: per label, learned log-odds b_j + a_j·[named], fitted first to the training
  videos' own odds, the head on the fused embedding starting at zero.
- **Popularity.** A ridge on the metadata alone ranks engagement at Spearman 0.29 out of fold, with the named labels
  0.33; the full model's head 0.21. → ``popularity_cascade``: a fixed ridge of engagement on the metadata and the
  disease *labels*, read at prediction time with the disease head's probabilities (gradient stopped). A single-task
  popularity model has no disease head, so it gets the metadata part only: this is where joint training gives
  popularity something the single-task model cannot have.
- **Quality.** A ridge on the mean keyframe and token features reaches QWK 0.656; the full model 0.574. →
  ``quality_skip`` (the sixth round's option) on.

Full model, same folds, training seed 0 (disease macro-F1 / popularity Spearman / quality QWK, SYNTHETIC):

=====================================================================  =====  =====  =====
configuration                                                          dis.   pop.   qual.
=====================================================================  =====  =====  =====
defaults of the eighth round                                           0.644  0.208  0.574
``popularity_cascade`` + ``quality_skip``                              0.665  0.305  0.633
  single-task heads with the same options                              0.638  0.267  0.670
+ ``disease_mentions`` with a fixed starting offset of 4 (superseded)  0.668  0.322  0.641
+ ``disease_mentions`` fitted to the training odds (the new defaults)  0.723  0.306  0.660
  the same, the quality head's own score also starting at zero         0.711  0.290  0.657
=====================================================================  =====  =====  =====

The last option was not kept. The no-GNN ablation now masks the GNN embeddings (``use_graph=False``) instead of
emptying the entity list, so it keeps the linked ids the mention prior reads: linking is not the GNN.
**Declared here, before it runs, and to be run once:** the eighth round's table of record again, with these defaults,
on the same declared set, which no option of this round was chosen on (``ovp demo-data .ovp/bench/fresh600 --videos
600 --seed 2``), five folds, seed 2, as two processes merged — the same three commands as above. Whatever it shows
replaces the README's table of record.

It ran once (2026-11-24) and is in the README: full 0.811 / 0.234 / 0.621 over all 600 videos pooled (the eighth
round's 0.682 / 0.170 / 0.547); no-enrichment 0.805 / 0.236 / 0.688, no-GNN 0.812 / 0.235 / 0.630, no-visual
0.811 / 0.249 / 0.514, no-text 0.799 / 0.231 / 0.615, concatenation 0.816 / 0.251 / 0.627, single-task heads
0.811 / 0.260 / 0.644. Not met. On disease every variant but no-text is within ±0.006 of the full model (the mention
prior carries most of each one's prediction); knowledge enrichment lowers quality by 0.067 [−0.099, −0.037].
That led to ``quality_skip_caption_only`` (the skip's token mean over the caption's own tokens, not the knowledge after
[SEP]), checked afterwards on the development set only: ridge alone 0.667 against 0.656; the full model with it
0.714 / 0.306 / 0.669 against 0.723 / 0.306 / 0.660. Off until a run can choose it.
A replicate after it (``--seed 2 --seeds 3 --folds 5``, all variants): full 0.795 / 0.233 / 0.608; no-GNN,
no-visual, concatenation and single-task heads lead it on disease by 0.013–0.018 (0.808, 0.813, 0.809, 0.810), five
variants on popularity, no-enrichment on quality by 0.058 (0.666). The parts that help beyond re-training noise in
both runs: enrichment (disease), text (disease), visual features (quality); enrichment also lowers quality.

A tenth round (2026-11-24). Generator 1 drew a symptom-only caption's complaint (a quarter of all captions) from six
generic phrases whatever the disease, so only a disease's *name* tied a caption to it and the graph had nothing to
add; and the profile-label diseases had no symptom edges in the graph at all. Now the lexicon holds 54 curated
HAS_PHENOTYPE edges from the 20 labels to the symptoms people with them describe, and generator 2 draws a symptom-only
caption's symptoms from them (``docs/demo-data.md``; this makes the graph informative by construction). The
development set (``--seed 1``) regenerated with generator 2 — videos, labels and other captions byte-identical — and
re-extracted; the linker found the main disease among the graph-related labels of all 142 captions that name no
label (4.2 related labels per such caption on average). Scratch route as before (/work/exp/cv.py on pickled
features), five cross-fitted folds of training seed 0, disease macro-F1 / popularity Spearman / quality QWK,
SYNTHETIC:

=======================================================================  =====  =====  =====
variant (``disease_related`` and ``quality_skip_caption_only`` on)       dis.   pop.   qual.
=======================================================================  =====  =====  =====
full                                                                     0.759  0.331  0.678
no enrichment (caption only: no annotations, no related labels)          0.739  0.300  0.684
no GNN                                                                   0.757  0.324  0.656
no visual                                                                0.784  0.322  0.512
no text                                                                  0.748  0.328  0.664
concatenation                                                            0.781  0.345  0.685
single-task heads                                                        0.771  0.288  0.676
full with ``concat_base`` (the new default)                              0.774  0.345  0.677
=======================================================================  =====  =====  =====

'concat' had led cross-attention on every task in the ninth round's declared run and replicate too, hence
``concat_base``: the concatenation baseline under the attention readouts, tanh gates starting closed. The ablations
were not re-run with it on the development set (time).
**Declared (cf0aad3) and run once** on a new set, ``--seed 3 --seeds 0,1 --folds 5`` (the README's table of
record): full 0.756 / 0.285 / 0.661; no-enrichment 0.742 / 0.277 / 0.678, no-GNN 0.748 / 0.292 / 0.651, no-visual
0.761 / 0.297 / 0.488, no-text 0.737 / 0.291 / 0.659, concatenation 0.761 / 0.311 / 0.658, single-task heads
0.768 / 0.278 / 0.660 (means over the two training seeds). Not met. ``separate_knowledge`` (``FeatureSettings``),
checked on the development set afterwards: 0.773 / 0.341 / 0.661 against 0.774 / 0.345 / 0.677 without; off.

An eleventh round (2026-11-24), **declared before it ran** (this paragraph's commit): a replicate of the tenth round's
declared run with more training seeds, on the GPU machine lent this round (one H100, 16 cores). The same set
(``.ovp/bench/decl600``, ``--seed 3``), the same features (extracted in the tenth round and carried to the GPU
machine with the token states quantised to int8 per dimension, 2.2 % mean relative error, and the keyframe and
entity vectors in fp16), the tenth round's options (no option changed since; training in fp32 on CUDA), 5 folds,
training seeds 0–4, all seven variants, 14 processes on the one GPU (scratch runner /work/exp/s11/abl_run.py, one
job per variant and seed; combined by /work/exp/s11/combine.py). A variant is reported over the seeds on which every
variant finished within the call. Whatever it shows is reported, and no option is changed on its result.

A twelfth round (2026-11-24), **declared before it runs** (this paragraph's commit), on the development CPU (no GPU
lent): the tenth round's declared run again, with one change, ``disease_visual='mil'`` (now the default: the frames'
own multiple-instance path to the disease logits, chosen over 'attention' and off on the development set's five
cross-fitted folds of training seed 0). The same set (``--seed 3``, ``.ovp/bench/decl600``, its features from the
feature cache), the same training seeds 0 and 1 and folds, all seven variants, as two processes merged::

    python bench/fusion_demo.py --seed 3 --out .ovp/bench/decl600 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 3 --out .ovp/bench/decl600 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

This set is no longer untouched: the diagnosis behind the option (disease macro-F1 on the videos whose caption names
none of their labels) was read on the eleventh round's replicate predictions on it, though no option value was chosen
on it. Same set, seeds and folds as the table of record make the change's effect a paired comparison with it. Run once;
whatever it shows is reported, and no option is changed on its result this session.
Result (the README's table of record now): full 0.758 / 0.290 / 0.663 (tenth round 0.756 / 0.285 / 0.661);
no-enrichment 0.748 / 0.281 / 0.675, no-GNN 0.756 / 0.292 / 0.664, no-visual 0.770 / 0.273 / 0.496, no-text
0.749 / 0.296 / 0.651, concatenation 0.756 / 0.284 / 0.657, single-task heads 0.771 / 0.278 / 0.660. Not met: single-task
heads and no-visual still lead on disease, no-enrichment on quality, no-text and no-GNN on popularity. On the 161
videos whose caption names none of their labels the full model's disease macro-F1 went 0.147 -> 0.161 (single-task
heads 0.240), far less than the development set's 0.237 -> 0.275. The first launch was stopped after two minutes,
before any metric, because the working tree was edited under it; it was rerun from a worktree of bcad7b1.

A thirteenth round (2026-11-24), **declared before it runs** (this paragraph's commit), on the development CPU (no
GPU lent), on a **fresh SYNTHETIC set nobody has looked at**: ``ovp demo-data --videos 600 --seed 4`` (generator 2,
``.ovp/bench/test600s13``; generated and its features extracted at the start of the round, labels unread). Three
changes from the twelfth round, all now defaults and chosen on the development set (``--seed 1``) only:
``disease_at_least_one='auto'`` (a model whose training videos all have a disease label predicts its most probable
disease when none reaches 0.5; on for every variant here, the set having 1–2 labels per video), ``disease_context``
(the caption's and entities' own disease path, trained by the disease loss alone) and ``quality_caption_readout``
(the quality readout pools the caption's tokens, not the appended knowledge). Training seeds 0 and 1, 5 folds, all
seven variants, as two processes merged, each from a git worktree of this commit with ``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 4 --out .ovp/bench/test600s13 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 4 --out .ovp/bench/test600s13 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

The acceptance question is the issue's: is the full model's mean over the two seeds at least every other variant's
on disease macro-F1, popularity Spearman and quality QWK. Run once; whatever it shows is reported, and no option is
changed on its result this session.
Result (the README's table of record now), mean of the two seeds, disease / popularity / quality: full
0.788 / 0.268 / 0.682; no-enrichment 0.756 / 0.237 / 0.672, no-GNN 0.786 / 0.251 / 0.671, no-visual
0.798 / 0.262 / 0.558, no-text 0.804 / 0.262 / 0.677, concatenation 0.794 / 0.264 / 0.666, single-task heads
0.802 / 0.187 / 0.677. Not met, on disease alone: the full model is at least as good as every variant on popularity and
quality, but no-text, single-task heads, no-visual and concatenation lead it on disease macro-F1 (by 0.016, 0.014,
0.010, 0.006). Run as declared, 09:50–10:27, nothing restarted; one full model trained and evaluated in 72.0 s.

A fourteenth round (2026-11-24), **declared before it runs** (this paragraph's commit), on the development CPU (no
GPU lent), on a **fresh SYNTHETIC set nobody has looked at**: ``ovp demo-data --videos 600 --seed 5`` (generator 2,
``.ovp/bench/test600s14``; generated and its features extracted at the start of the round, labels unread). One change
from the thirteenth round, now the default and chosen on the development set (``--seed 1``, 5 cross-fitted folds,
training seeds 0 and 1) by a rule written before the runs: ``disease_head_decay=10`` (AdamW weight decay 10 on the
fused disease head alone; the full model's two-seed mean there 0.795 / 0.324 / 0.680 -> 0.804 / 0.329 / 0.674).
Training seeds 0 and 1, 5 folds, all seven variants, as two processes merged, each from a git worktree of this commit
with ``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 5 --out .ovp/bench/test600s14 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 5 --out .ovp/bench/test600s14 --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

The acceptance question is the issue's, as in the thirteenth round. Run once; whatever it shows is reported, and no
option is changed on its result this session.
Result (the README's table of record now), mean of the two seeds, disease / popularity / quality: full
0.818 / 0.352 / 0.689; no-enrichment 0.764 / 0.353 / 0.706, no-GNN 0.811 / 0.345 / 0.678, no-visual
0.822 / 0.343 / 0.532, no-text 0.809 / 0.353 / 0.686, concatenation 0.819 / 0.357 / 0.683, single-task heads
0.812 / 0.331 / 0.686. Not met: 12 of 18 comparisons. The decay removed the thirteenth round's disease deficits to
no-text and single-task heads; no-visual and concatenation still lead on disease (by 0.003, 0.001), concatenation,
no-text and no-enrichment on popularity (0.005, 0.001, 0.0003), no-enrichment on quality (0.017, both seeds; the only
gap larger than one seed's spread). Run as declared, 14:21–15:02, nothing restarted; one full model trained and
evaluated in 74.8 s.

A sixteenth round (2026-11-24, fresh machine, no GPU lent), development only: ``separate_knowledge=True``
(``FeatureSettings``) on the fourteenth round's set (``--seed 5``), now a development set because it shows the
no-enrichment quality gap, against the defaults re-run on the same features (on the fresh machine they did not
reproduce the table of record exactly). Full model, ``--seeds 0`` and ``--seeds 1`` as separate processes, 5 folds, epochs 50.
Two-seed means: defaults 0.821 / 0.360 / 0.684, candidate 0.818 / 0.343 / 0.703. Rule written before the runs: quality
+0.008 or more, neither other metric down by more than 0.010. Quality passed (+0.019, both seeds), popularity did not
(−0.017), so it was not adopted. A second candidate, ``--set quality_skip_caption_alone=true`` (only the quality
skip's ridge reads the caption encoded on its own), rule written before it was built, the same bars: 0.810 / 0.353 /
0.697, disease down 0.011 (both seeds), so not adopted either, and nothing was declared (README).

The sixteenth round's replicate, **declared before it runs** (this paragraph's commit): the fourteenth round's
configuration unchanged (today's defaults; the two options above stay off), on a **fresh SYNTHETIC set nobody has
looked at**, ``ovp demo-data --videos 600 --seed 6`` (generator 2, generated and its features extracted on this
machine at the start of the round, labels unread). Its purpose is one more independent set for the same question:
which of the fourteenth round's gaps recur (no-enrichment's quality lead above all) and which change sign. Training
seeds 0 and 1, 5 folds, all seven variants, two processes merged, each from a git worktree of this commit with
``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 6 --out DIR --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 6 --out DIR --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

The acceptance question is the issue's. Run once; whatever it shows is reported, and no option is changed on its
result this session.
Result (README, beside the table of record), mean of the two seeds, disease / popularity / quality: full
0.802 / 0.276 / 0.682; no-enrichment 0.744 / 0.285 / 0.708, no-GNN 0.804 / 0.272 / 0.687, no-visual
0.799 / 0.282 / 0.577, no-text 0.794 / 0.268 / 0.653, concatenation 0.801 / 0.278 / 0.688, single-task heads
0.796 / 0.252 / 0.692. Not met: 10 of 18 comparisons. No-enrichment leads on quality again (0.026, both seeds, the
only gap clear of seed noise); the other seven losses are within a seed's spread. Run as declared, 20:28–21:28,
nothing restarted; one full model trained and evaluated in 133.1 s.

A seventeenth round (2026-11-24, same machine, no GPU lent). Development: the sixteenth round's two candidates on a
second development set, the replicate's set (``--seed 6``, burned as a test set), against that run's full model (same
machine, same defaults; not re-run). Rule written before the runs: pooled over ``--seed 5`` and ``--seed 6`` (mean of
the two sets' two-seed differences), quality +0.008 or more, neither other metric down by more than 0.010; if both
qualify, the larger quality gain. Pooled, disease / popularity / quality: ``separate_knowledge`` −0.007 / +0.000 /
+0.020; ``quality_skip_caption_alone`` −0.005 / +0.002 / +0.021 (on ``--seed 6`` alone 0.803 / 0.287 / 0.711 against
0.802 / 0.276 / 0.683). Both qualify; ``quality_skip_caption_alone`` is now the default (this paragraph's commit).

The seventeenth round's test, **declared before it runs** (this paragraph's commit): today's defaults, i.e. the
fourteenth round's configuration plus ``quality_skip_caption_alone``, on a **fresh SYNTHETIC set nobody has looked
at**, ``ovp demo-data --videos 600 --seed 7`` (generator 2, generated and its features extracted on this machine at the
start of the round, labels unread). Training seeds 0 and 1, 5 folds, all seven variants (each variant gets the
option; the caption-alone states of a caption-only variant are its own tokens), two processes merged, each from a git
worktree of this commit with ``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 7 --out DIR --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 7 --out DIR --seeds 0,1 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

The acceptance question is the issue's: the full model at least as good as every variant on the two-seed means of
disease macro-F1, popularity Spearman and quality QWK. Run once; whatever it shows is reported, and no option is changed
on its result this session.
Result (README, the table of record), mean of the two seeds, disease / popularity / quality: full
0.805 / 0.278 / 0.668; no-enrichment 0.739 / 0.269 / 0.678, no-GNN 0.804 / 0.279 / 0.675, no-visual
0.804 / 0.277 / 0.593, no-text 0.796 / 0.282 / 0.641, concatenation 0.799 / 0.277 / 0.676, single-task heads
0.808 / 0.249 / 0.663. Not met: 12 of 18 comparisons. No-enrichment leads on quality again (0.010, both seeds);
concatenation (0.008, both seeds) and no-GNN (0.008) too; the other three losses are under 0.005. Run as declared,
22:28–23:24, nothing restarted; one full model trained and evaluated in 101.5 s.
A diagnostic afterwards (decided before it ran, nothing changed on it): the full model on this set without the option
(``--set quality_skip_caption_alone=false``) scored 0.807 / 0.275 / 0.642, so the option gained 0.026 of quality here
too (both seeds) and no-enrichment's lead would have been 0.036 without it.

An eighteenth round (2026-11-25, same machine, no GPU lent). Development only: two new options, each aimed at a
recurring loss, on ``--seed 6`` and ``--seed 7`` (both burned), full model, training seeds 0 and 1, against the
current defaults' runs on the same features (not re-run; a small training run at this round's code with both options
off gave weights bit-identical to the previous commit's). ``quality_readout_caption_alone`` (the quality readout reads
the caption encoded on its own, cross-attended in a pass of its own) and ``popularity_head_decay=10`` (the fused
popularity head shrunk toward the cascade). Rule written before the runs: pooled over the two sets, Q quality +0.005 or
more, disease not down more than 0.005, popularity not more than 0.010; P popularity not down more than 0.003, disease
and quality not more than 0.005, and seed 0's and seed 1's popularity predictions more alike (Spearman between them).
Pooled, disease / popularity / quality: Q −0.000 / −0.016 / −0.004 (quality −0.009 on ``--seed 6``, +0.002 on
``--seed 7``); P −0.001 / −0.009 / −0.007, predictions' agreement 0.825 against 0.828. Neither passes; both stay off,
there was no declared run, and ``--seed 8`` (generated, features cached) stays unread for the next declared test.
Two diagnostics afterwards, decided before they ran, nothing changed on them: the defaults with training seeds 2 and 3
moved the two-seed mean's quality by −0.020 (``--seed 6``) and −0.014 (``--seed 7``); and on ``--seed 7`` with four
seeds no-enrichment still leads the full model on quality by 0.016 and concatenation by 0.009 (README).

A nineteenth round (2026-11-25, same machine, no GPU lent). Development only, judged on four training seeds as the
eighteenth round advised. One new option, ``weight_ema_epochs`` (Polyak averaging of the weights: validation, the
checkpoint kept and the refit's snapshots use an exponential moving average of the weights, here with a time constant
of 3 epochs), aimed at the full model's unstable quality. ``--seed 7`` (burned), full and no-enrichment both with the
option, training seeds 0-3, 5 folds, 50 epochs, against the current defaults' four-seed means on the same features
(full 0.802 / 0.279 / 0.661, no-enrichment 0.743 / 0.275 / 0.677). Rule written before the runs: no-enrichment's
quality lead down to 0.005 or less, the full model's quality not lower, its disease and popularity not down by more
than 0.005. Result: full 0.802 / 0.276 / 0.657, no-enrichment 0.749 / 0.279 / 0.669; the lead is 0.013 and the full
model's quality fell by 0.005, so it fails and stays off. As written before the run, ``--seed 8`` then stayed unread.
Three diagnostics afterwards, each written down before it ran, changed nothing: quality trained alone on caption-only
features scored 0.668 on ``--seed 7`` (four seeds), below no-enrichment's multi-task 0.677, so with caption-only text
the other tasks help quality; ``quality_readout_caption_alone`` with four seeds scored 0.801 / 0.275 / 0.669 on
``--seed 7`` (quality +0.008 over the defaults, no-enrichment's lead halved to 0.008, quality spread over the seeds
0.013 against 0.033), but on ``--seed 6`` 0.798 / 0.283 / 0.696 (quality −0.004 against the defaults' 0.701),
so over the two sets +0.002 (README).

The twentieth round's test, **declared before it runs** (this paragraph's commit), with **four training seeds**, since a
two-seed mean's quality moves by 0.014-0.020 with the seed pair alone: today's defaults, unchanged since the seventeenth
round (every option tried since failed its development rule), on a **fresh SYNTHETIC set nobody has looked at**,
``ovp demo-data --videos 600 --seed 8`` (generator 2, generated and its features extracted on this machine in the
eighteenth round, labels unread). Training seeds 0-3, 5 folds, all seven variants, two processes merged, each from a
git worktree of this commit with ``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 8 --out DIR --seeds 0,1,2,3 --folds 5 --epochs 50 --predictions \
        --variant full --variant single_task > A.json
    python bench/fusion_demo.py --seed 8 --out DIR --seeds 0,1,2,3 --folds 5 --epochs 50 --predictions \
        --variant no_enrichment --variant no_gnn --variant no_visual --variant no_text --variant concat > B.json
    python bench/fusion_demo.py --merge A.json --merge B.json

The acceptance question is the issue's, on the four-seed means. Run once; whatever it shows becomes the table of record
and is reported, and no option is changed on its result this session.
Result (README, the table of record), four-seed means, disease / popularity / quality: full 0.821 / 0.297 / 0.682;
no-enrichment 0.778 / 0.296 / 0.684, no-GNN 0.816 / 0.298 / 0.673, no-visual 0.821 / 0.290 / 0.558, no-text
0.823 / 0.294 / 0.679, concatenation 0.821 / 0.292 / 0.675, single-task heads 0.822 / 0.246 / 0.670. Not met: 14 of 18
comparisons. The four losses (quality to no-enrichment 0.002, popularity to no-GNN 0.001, disease to no-text 0.002 and
to single-task heads 0.001) are each within two standard errors of the four-seed mean difference; none is a loss clear
of that noise, five are wins clear of it. Run as declared, 04:06-05:54, nothing restarted; one full model trained and
evaluated in 100.1 s.

The twenty-first round's measurement, **declared before it runs** (this paragraph's commit): the seventeenth round's
declared table (``--seed 7``, training seeds 0 and 1, today's defaults) completed to **four training seeds**. Read
against the seeds' noise (``AblationReport.verdicts``), that two-seed table has three clear losses (quality to
no-enrichment -0.010 and to concatenation -0.008, popularity to no-text -0.004), where the twentieth round's four-seed
table on ``--seed 8`` has none; but two seeds' standard error rests on one degree of freedom. Does the set-7 reading
keep its losses with four seeds? Seeds 2 and 3 of full, no-enrichment and concatenation were trained in the eighteenth
round at these defaults (scratch, ``n7_s*``/``d7_*_s*``); the other four variants' seeds 2 and 3 run now, two processes
(one per seed) from a git worktree of this commit with ``OMP_NUM_THREADS=1``::

    python bench/fusion_demo.py --seed 7 --out DIR --seeds S --folds 5 --epochs 50 --predictions \
        --variant no_gnn --variant no_visual --variant no_text --variant single_task > S.json

and every part (the seventeenth round's A.json and B.json, the eighteenth round's six, these two) is merged by
``--merge``, which takes parts that split the seeds as well as the variants. A check first: no-text, seed 0, retrained
here must give the seventeenth round's predictions exactly, else the parts are not one configuration and nothing is
merged. This set's labels have been read (it was a development set since), but nothing is chosen on this run: no
option changes whatever it shows, and it is reported beside the table of record, not in its place.

The three multi-seed alternatives of the first round are within a seed's spread of each other (±0.1 and more); equal
weighting had the highest mean and is the simplest, so it became the default. ``disease_loss=sum`` raised disease F1 on seed 0 but stopped
at epoch 14 with quality QWK down 0.06, and was not pursued. Per-task checkpoints (one trunk per head) were not tried
before the sixth round's scratch run above: a saved model has one trunk, and its embedding is what the Neo4j vector
index holds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from ovp.settings import PROJECT_ROOT, Settings

log = logging.getLogger("bench.fusion_demo")


@click.command()
@click.option("--videos", type=int, default=600, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Demo-set, split and (default) training seed.")
@click.option("--seeds", default=None, help="Training seeds averaged per variant, e.g. 0,1,2 [default: --seed].")
@click.option("--epochs", type=int, default=None, help="Most epochs per model [default: FusionConfig's].")
@click.option("--patience", type=int, default=None,
              help="Early-stopping patience [default: FusionConfig's]. The disease head crosses its 0.5 threshold only "
                   "after ~10 epochs on this set, so a short patience stops before it has learnt anything.")
@click.option("--width", type=int, default=128, show_default=True,
              help="Model width for every variant: 128 had the best summed validation score of the full model with "
                   "per-task readouts (see the docstring); 256 took ~3× longer per epoch than 64 and fit no better.")
@click.option("--dropout", type=float, default=0.2, show_default=True, help="Dropout for every variant.")
@click.option("--lr", type=float, default=2e-3, show_default=True,
              help="AdamW learning rate for every variant (14 steps per epoch at 420 videos, batch 32).")
@click.option("--variant", "variants", multiple=True,
              help="Only these variants (repeatable) [default: all]; lets two processes share the ablation.")
@click.option("--visual-backbone", type=click.Choice(["efficientnet_lite0", "resnet18", "resnet50"]), default=None,
              help="Visual encoder [default: OVP_VISUAL_BACKBONE, efficientnet_lite0].")
@click.option("--visual-weights", type=click.Choice(["pretrained", "random"]), default=None,
              help="Visual weights [default: OVP_VISUAL_WEIGHTS, pretrained].")
@click.option("--text-model", default=None,
              help="Text encoder of the fusion [default: OVP_TEXT_MODEL, bge-small-zh-v1.5]; all-MiniLM-L6-v2 or a "
                   "directory also work.")
@click.option("--keyframes", type=click.IntRange(min=1), default=4, show_default=True,
              help="Keyframes per video, K (overrides OVP_KEYFRAMES).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Demo set folder [default: .ovp/bench/demo<videos>].")
@click.option("--select-on", "select_on", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="Split the variants are scored on: 'val' while choosing training options (the test split is "
                   "then never scored), 'test' for the reported table.")
@click.option("--split-per-seed", is_flag=True,
              help="Each training seed draws its own train/val/test split (every variant of a seed shares it), so the "
                   "means average over len(seeds) test sets of ~80 videos instead of one.")
@click.option("--folds", type=click.IntRange(min=3), default=None,
              help="K-fold cross-fitting per seed: every video is tested once, the metrics are over all of them pooled "
                   "and the report adds a paired bootstrap of full − variant (K models per variant and seed).")
@click.option("--predictions", is_flag=True,
              help="Put each variant's pooled test predictions in the JSON, so --merge can combine processes.")
@click.option("--merge", "merge", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Train nothing: combine the JSON outputs of processes that ran different --variant sets or "
                   "different --seeds of the same ablation with --predictions (repeatable) and print the one table "
                   "and JSON.")
@click.option("--set", "settings_overrides", multiple=True, metavar="FIELD=JSON",
              help="A FusionConfig field for every variant, e.g. --set task_weighting=equal or "
                   "--set modality_dropout=0.3 (repeatable; the value is JSON, a bare word is read as a string).")
def main(videos: int, seed: int, seeds: str | None, epochs: int | None, patience: int | None, width: int,
         dropout: float, lr: float, variants: tuple[str, ...], visual_backbone: str | None,
         visual_weights: str | None, text_model: str | None, keyframes: int,
         out: Path | None, select_on: str, split_per_seed: bool, folds: int | None, predictions: bool,
         merge: tuple[Path, ...], settings_overrides: tuple[str, ...]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    if merge:
        _merge(merge)
        return
    from fusion.ablation import VARIANTS, ablate_on_manifest
    from fusion.demo_data import generate_demo_set

    encoders = {"visual_backbone": visual_backbone, "visual_weights": visual_weights, "text_model": text_model}
    settings = dataclasses.replace(Settings.from_env(), keyframes=keyframes,
                                   **{k: v for k, v in encoders.items() if v is not None})
    out = out or PROJECT_ROOT / ".ovp" / "bench" / f"demo{videos}"
    manifest = out / "manifest.jsonl"
    generate_s = 0.0
    if not manifest.is_file():
        started = time.perf_counter()
        summary = generate_demo_set(out, videos=videos, seed=seed)
        generate_s = time.perf_counter() - started
        log.info("%s", summary.line())
    overrides = _parse_overrides(settings_overrides)
    if patience:
        overrides["patience"] = patience
    started = time.perf_counter()
    report, feats = ablate_on_manifest(
        manifest, settings, seed=seed, seeds=[int(s) for s in seeds.split(",")] if seeds else None, epochs=epochs,
        variants=variants or tuple(VARIANTS), width=width, dropout=dropout, lr=lr,
        progress=sys.stderr.isatty(), eval_split=select_on, split_per_seed=split_per_seed,
        folds=folds, **overrides,
        on_variant=lambda v: log.info("%s: %s (train %.0f s, eval %.1f s)", v.name, v.headline, v.train_s, v.eval_s),
    )
    total_s = time.perf_counter() - started
    print(report.table(), file=sys.stderr)
    train_s = sum(v.train_s for v in report.variants)
    eval_s = sum(v.eval_s for v in report.variants)
    full = next((v for v in report.variants if v.name == "full"), None)
    # The 20-minute claim is about one full model: its training + test evaluation (seconds are summed over the seeds,
    # and over the folds when cross-fitting, in VariantResult, so divide).
    full_s = (full.train_s + full.eval_s) / (len(full.seeds) * (folds or 1)) if full else None
    result = {
        "non_inferiority": report.target(),
        "benchmark": "fusion ablation on the demo set",
        "model": {"width": width, "dropout": dropout, "lr": lr, "epochs": epochs, "patience": patience,
                  "overrides": {k: v for k, v in overrides.items() if k != "patience"}},
        **report.to_dict(predictions=predictions),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "videos": videos,
        "encoders": {"visual": feats.items[0].visual_model, "text": feats.items[0].text_model,
                     "keyframes": settings.keyframes,
                     "gnn_entities_with_embedding": sum(len(it.entity_ids) for it in feats.items)},
        "seconds": {
            "generate_demo_set": round(generate_s, 1),
            "features": round(feats.seconds, 1),
            "feature_stages": feats.timings,
            "full_model_training_plus_evaluation_per_seed": round(full_s, 1) if full_s is not None else None,
            "ablation_training": round(train_s, 1),
            "ablation_evaluation": round(eval_s, 1),
            "ablation_training_plus_evaluation": round(train_s + eval_s, 1),
            "total": round(total_s + generate_s, 1),
        },
        "targets": {"full_model_training_plus_evaluation_under_s": 1200,
                    "met": full_s is not None and full_s < 1200,
                    **_noise_targets(report)},
        "failed_videos": len(feats.failures),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


def _merge(paths: tuple[Path, ...]) -> None:
    """Print the table and JSON of one report made of several processes' ``--predictions`` outputs."""
    from fusion.ablation import AblationReport

    parts = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    missing = [str(path) for path, part in zip(paths, parts)
               if any("scored" not in v for v in part.get("variants", {}).values())]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)} lack predictions: run them with --predictions", param_hint="--merge")
    differ = setting_differences(parts)
    if differ:
        raise click.BadParameter(f"the processes were not run alike: they differ in {', '.join(differ)}; run every part "
                                 "with the same options (--set, --epochs, --width, ...), manifest and encoders",
                                 param_hint="--merge")
    try:
        report = AblationReport.merged(parts)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--merge") from None
    print(report.table(), file=sys.stderr)
    with_full = next((part for part in parts if "full" in part["variants"]), parts[0])
    print(json.dumps({
        "non_inferiority": report.target(),
        "benchmark": "fusion ablation on the demo set",
        "merged_from": [str(path) for path in paths],
        "model": with_full.get("model"),
        **report.to_dict(),
        "manifest": with_full.get("manifest"),
        "manifest_sha256": with_full.get("manifest_sha256"),
        "encoders": with_full.get("encoders"),
        "seconds": {str(path): part.get("seconds") for path, part in zip(paths, parts)},
        "targets": {**(with_full.get("targets") or {}), **_noise_targets(report)},
    }, ensure_ascii=False, indent=2))


def _noise_targets(report: Any) -> dict[str, object]:
    """The target (non-inferiority: no variant ahead by more than ``NOISE_MARGIN_SE`` standard errors of the seed mean;
    None with one seed) and, beside it, the plain reading (the full model's mean at least as good as every variant's,
    on every task, however small the gap)."""
    return {"full_never_clearly_worse_than_an_ablation": report.non_inferiority()["met"],
            "full_at_least_every_ablation_on_means": all(v is not False for v in report.full_wins().values())}


#: What every process of one ablation must share besides what ``AblationReport.merged`` checks (seeds, folds, split,
#: sizes): the model options (width, dropout, lr, epochs, patience, ``--set``), the manifest and the encoders. Without
#: this, parts trained under different options would merge into one table without a word.
SHARED_SETTINGS = ("model", "manifest", "videos", "encoders")


def setting_differences(parts: list[dict[str, object]]) -> list[str]:
    """The ``SHARED_SETTINGS`` keys on which some part differs from the first (empty when they all agree)."""
    first = parts[0]

    def identity(part: dict[str, object], key: str) -> object:
        # One manifest is the same file however its path was spelled: compare contents where every part hashed them.
        if key == "manifest" and all(p.get("manifest_sha256") for p in parts):
            return part["manifest_sha256"]
        return part.get(key)

    return [key for key in SHARED_SETTINGS if any(identity(part, key) != identity(first, key) for part in parts[1:])]


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, object]:
    """``FIELD=JSON`` pairs → a dict (a value that is not JSON is kept as a string)."""
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not FIELD=VALUE", param_hint="--set")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


if __name__ == "__main__":
    main()
