#!/bin/bash
# Hyperparameter search on 4 GPU nodes: 16 ranks, workers of 4 ranks (one per GPU) that
# train each candidate data-parallel, 2 islands with migration, a wall-clock budget and a
# crash-safe checkpoint (resubmit the same script to continue where it stopped).
#SBATCH --job-name=propulate-hpo
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00

module load openmpi            # the MPI that mpi4py was built against
source ~/venvs/hpo/bin/activate

export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
srun propulate-hpo run \
    --loss propulate_hpo.digits:digits_loss \
    --space examples/digits_space.toml \
    --ranks-per-worker 4 \
    --islands 2 --migration-probability 0.9 \
    --early-stopping 0.5 \
    --generations 200 --budget-s 6600 \
    --checkpoint "$SCRATCH/hpo-checkpoint" \
    --output "$SCRATCH/hpo-results"
