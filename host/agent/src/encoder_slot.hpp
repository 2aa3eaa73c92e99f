// The encoder plugin instance in use, behind one lock: the encoder stage encodes with it, and
// set_config may replace it between two frames (the command executor, through EncoderSwitch).
#pragma once

#include "ports.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace deskstream::agent {

class EncoderSlot : public EncoderSwitch {
public:
    explicit EncoderSlot(std::unique_ptr<host::EncoderInstance> encoder)
        : encoder_(std::move(encoder)) {}

    /// Runs `f(instance)` under the lock (encode, and copying the output out).
    template <class F>
    auto locked(F&& f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f(*encoder_);
    }

    std::string name() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return encoder_->plugin().name;
    }
    ds_codec codec() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return encoder_->codec();
    }
    void replace(std::unique_ptr<host::EncoderInstance> next) override {
        std::lock_guard<std::mutex> lock(mutex_);
        encoder_.swap(next);
    }

private:
    mutable std::mutex mutex_;
    std::unique_ptr<host::EncoderInstance> encoder_;
};

}  // namespace deskstream::agent
